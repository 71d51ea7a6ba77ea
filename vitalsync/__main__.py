from vitalsync.cli import main

raise SystemExit(main())
