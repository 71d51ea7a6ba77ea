"""What SendGrid answers about a v3 mail-send body: its 400 errors, as ``{"message", "field", "help"}``."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

HELP = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors#"
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def error(message: str, field: str | None = None, help_anchor: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": HELP + help_anchor if help_anchor else None}


def mail_problems(mail: Any, invalid: Collection[str] = ()) -> list[dict[str, Any]]:
    """What SendGrid would say about this v3 mail-send body; empty when it is acceptable."""
    if not isinstance(mail, dict):
        return [error("Bad Request", None, "message.bad_request")]
    problems: list[dict[str, Any]] = []
    personalizations = mail.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        problems.append(error("The personalizations field is required and must have at least one "
                              "personalization.", "personalizations", "message.personalizations"))
        personalizations = []
    for p_index, personalization in enumerate(personalizations):
        to = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(to, list) or not to:
            problems.append(error("The to array is required for all personalization objects, and must have "
                                  "at least one email object with a valid email address.",
                                  f"personalizations.{p_index}.to", "message.personalizations.to"))
            continue
        for r_index, recipient in enumerate(to):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(email, str) or not ADDRESS.match(email) or email in invalid:
                problems.append(error("Does not contain a valid address.",
                                      f"personalizations.{p_index}.to.{r_index}.email",
                                      "message.personalizations.to"))
    sender = mail.get("from")
    if not isinstance(sender, dict) or not ADDRESS.match(str(sender.get("email", ""))):
        problems.append(error("The from object must be provided for every email send. It is an object that "
                              "requires an email parameter, but may also contain a name parameter.",
                              "from", "message.from"))
    subjects = [isinstance(p, dict) and bool(p.get("subject")) for p in personalizations]
    if not mail.get("subject") and not (subjects and all(subjects)):
        problems.append(error("The subject is required. You can get around this requirement if you use a "
                              "template with a subject defined or if every personalization has a subject "
                              "defined.", "subject", "message.subject"))
    content = mail.get("content")
    if not isinstance(content, list) or not content:
        problems.append(error("Unless a valid template_id is provided, the content parameter is required. "
                              "There must be at least one defined content block.", "content", "message.content"))
        content = []
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not block.get("type") or not isinstance(block.get("value"), str) \
                or not block["value"]:
            problems.append(error("The content value must be a string at least one character in length.",
                                  f"content.{index}.value", "message.content.value"))
    types = [block.get("type") for block in content if isinstance(block, dict)]
    if "text/html" in types and "text/plain" in types and types.index("text/plain") > types.index("text/html"):
        problems.append(error("If present, text/plain and text/html may only be provided in this order, "
                              "followed by any other content.", "content", "message.content.type"))
    custom_args = mail.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values()):
        problems.append(error("Invalid type. Expected: string, given: other.", "custom_args",
                              "message.custom_args"))
    categories = mail.get("categories", [])
    if not isinstance(categories, list) or len(categories) > 10 \
            or not all(isinstance(c, str) and len(c) <= 255 for c in categories):
        problems.append(error("The categories must be at most 10 strings of at most 255 characters.",
                              "categories", "message.categories"))
    return problems
