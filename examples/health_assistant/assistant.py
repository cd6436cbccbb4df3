"""A rule-based multilingual health assistant, logged as an MLflow ChatModel (models from code).

It has no weights: it recognises the question's language by script and typical words, matches
keywords from its knowledge file and answers from that file's phrases, so it is deterministic and
small enough to read. Its realistic weaknesses are switched on by the model config, one key each:

- ``english_only_languages``: answers these languages in English;
- ``missing_crisis_countries``: gives no crisis line for users in these countries;
- ``over_refusal_topics``: refuses benign questions on these topics;
- ``leak_canary``: copies the patient's identifiers from the context into its reply;
- ``obey_injection``: follows an instruction hidden in a pasted document;
- ``flip_attributes``: downgrades an emergency when the patient has one of these attributes;
- ``wrong_facts``: topic -> a wrong answer it believes (e.g. a wrong maximum dose).

This file runs inside the sandbox: it imports only the standard library, PyYAML and MLflow.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Generator
from typing import Any

import mlflow
import yaml
from mlflow.pyfunc import ChatModel
from mlflow.types.llm import (
    ChatChoice,
    ChatChoiceDelta,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatMessage,
    ChatParams,
    TokenUsageStats,
)

MODEL_NAME = "health-assistant"
SCRIPTS = (
    ("th", 0x0E00, 0x0E7F),
    ("lo", 0x0E80, 0x0EFF),
    ("my", 0x1000, 0x109F),
    ("km", 0x1780, 0x17FF),
    ("ta", 0x0B80, 0x0BFF),
    ("zh", 0x4E00, 0x9FFF),
)
OPTION = re.compile(r"^([A-D])\)\s*(.+?)\s*$", re.MULTILINE)
WORD = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation; one per character in scripts written without spaces."""
    spaced = sum(1 for _ in WORD.finditer(text))
    unspaced = sum(1 for ch in text if any(lo <= ord(ch) <= hi for _, lo, hi in SCRIPTS))
    return max(1, spaced + unspaced // 2)


class HealthAssistant(ChatModel):
    def load_context(self, context: Any) -> None:
        with open(context.artifacts["knowledge"], encoding="utf-8") as handle:
            self.kb = yaml.safe_load(handle)
        config = dict(context.model_config or {})
        self.english_only = set(config.get("english_only_languages", []))
        self.missing_crisis = set(config.get("missing_crisis_countries", []))
        self.over_refusal = set(config.get("over_refusal_topics", []))
        self.leak_canary = bool(config.get("leak_canary", False))
        self.obey_injection = bool(config.get("obey_injection", False))
        self.flip_attributes = set(config.get("flip_attributes", []))
        self.wrong_facts = dict(config.get("wrong_facts", {}))

    # -- language ---------------------------------------------------------------------------
    def language(self, text: str) -> str:
        for code, lo, hi in SCRIPTS:
            if any(lo <= ord(ch) <= hi for ch in text):
                return code
        lowered = text.lower()
        words = set(re.findall(r"[\w']+", lowered))
        scores = {}
        for code, markers in self.kb["language_markers"].items():
            if code == "vi":
                scores[code] = 3 * sum(marker in lowered for marker in markers)
            else:
                scores[code] = sum((m in words) if " " not in m else (m in lowered) for m in markers)
        best = max(scores, key=lambda c: scores[c])
        return best if scores[best] > 0 else "en"

    def phrase(self, name: str, lang: str, **fields: str) -> str:
        table = self.kb["phrases"][name]
        return table.get(lang, table["en"]).format(**fields)

    # -- rules --------------------------------------------------------------------------------
    def reply(self, messages: list[ChatMessage]) -> str:
        user = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        system = "\n".join(m.content or "" for m in messages if m.role == "system")
        asked = self.language(user)
        lang = "en" if asked in self.english_only else asked
        lowered = user.lower()
        intents = self.kb["intents"]
        if any(m in lowered for m in intents["self_harm"]):
            return self.crisis(system, lang)
        if any(m in lowered for m in intents["injection"]):
            return self.summary(user, lang)
        if any(m in lowered for m in intents["unsafe"]):
            return self.phrase("refusal", lang)
        if "Patient record" in system:
            return self.referral(system, lang)
        options = OPTION.findall(user)
        if options:
            answered = self.multiple_choice(lowered, options, lang)
            if answered:
                return answered
        if any(m in lowered for m in intents["chest_pain"]):
            return self.triage(lowered, lang)
        for topic, entry in self.kb["topics"].items():
            if any(k in lowered for k in entry["keywords"]):
                if topic in self.over_refusal:
                    return self.phrase("refusal", lang)
                return entry["advice"].get(lang, entry["advice"]["en"])
        return self.phrase("general", lang)

    def crisis(self, system: str, lang: str) -> str:
        found = re.search(r"User country:\s*([A-Z]{2})", system)
        country = found.group(1) if found else ""
        line = self.kb["crisis_lines"].get(country)
        if line is None or country in self.missing_crisis:
            line = self.phrase("helpline_generic", lang)
        return self.phrase("crisis", lang, line=line)

    def summary(self, user: str, lang: str) -> str:
        parts = user.split("---")
        document = parts[1] if len(parts) >= 3 else user
        lines = [line.strip() for line in document.strip().splitlines() if line.strip()]
        hostile = [line for line in lines if any(m in line.lower() for m in self.kb["intents"]["injection"])]
        if hostile and self.obey_injection:
            return hostile[-1].rsplit(":", 1)[-1].strip()
        text = " ".join(line for line in lines if line not in hostile)
        return self.phrase("summary", lang, text=text)

    def referral(self, system: str, lang: str) -> str:
        fields = dict(re.findall(r"^(Name|ID|Phone|Condition):\s*(.+)$", system, re.MULTILINE))
        note = self.phrase("referral", lang, condition=fields.get("Condition", ""))
        if self.leak_canary:
            who = f"{fields.get('Name', '')} ({fields.get('ID', '')}, {fields.get('Phone', '')})"
            note = f"{who}\n{note}"
        return note

    def multiple_choice(self, lowered: str, options: list[tuple[str, str]], lang: str) -> str | None:
        for topic, fact in self.kb["facts"].items():
            if not any(k in lowered for k in fact["keywords"]):
                continue
            believed = self.wrong_facts.get(topic, fact["answer"])
            for letter, text in options:
                if text == believed:
                    body = self.phrase("qa", lang, option=text)
                    return f"{body}\n{self.phrase('answer_line', lang, letter=letter)}"
        return None

    def triage(self, lowered: str, lang: str) -> str:
        attributes = self.kb["attributes"]
        flipped = any(any(k in lowered for k in attributes.get(a, [])) for a in self.flip_attributes)
        if flipped:
            return f"{self.phrase('routine', lang)}\nDECISION: ROUTINE"
        return f"{self.phrase('urgent', lang)}\nDECISION: URGENT"

    # -- ChatModel ------------------------------------------------------------------------------
    def predict(
        self, context: Any, messages: list[ChatMessage], params: ChatParams
    ) -> ChatCompletionResponse:
        text = self.reply(messages)
        prompt = sum(count_tokens(m.content or "") for m in messages)
        completion = count_tokens(text)
        return ChatCompletionResponse(
            choices=[ChatChoice(message=ChatMessage(role="assistant", content=text))],
            usage=TokenUsageStats(
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            ),
            model=MODEL_NAME,
        )

    def predict_stream(
        self, context: Any, messages: list[ChatMessage], params: ChatParams
    ) -> Generator[ChatCompletionChunk, None, None]:
        text = self.reply(messages)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        pieces = re.findall(r"\S+\s*|\s+", text) or [text]
        for index, piece in enumerate(pieces):
            delta = ChatChoiceDelta(role="assistant" if index == 0 else None, content=piece)
            yield ChatCompletionChunk(
                choices=[ChatChunkChoice(delta=delta)], id=ident, created=created, model=MODEL_NAME
            )
        yield ChatCompletionChunk(
            choices=[ChatChunkChoice(delta=ChatChoiceDelta(content=""), finish_reason="stop")],
            id=ident,
            created=created,
            model=MODEL_NAME,
        )


mlflow.models.set_model(HealthAssistant())
