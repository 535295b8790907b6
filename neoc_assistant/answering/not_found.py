"""The answer when the documents do not answer: said plainly, with the nearest documents, each once."""

from __future__ import annotations

from neoc_assistant.answer import Answer
from neoc_assistant.answering.sources import distinct_documents, source_dict
from neoc_assistant.language.texts import answer_text, question_language
from neoc_assistant.retrieve.hits import Hit


def not_found(question: str, notice: str, nearest: list[Hit]) -> Answer:
    """Never related quotes: a true sentence that does not answer is read as the answer by an
    officer in a hurry, so only the documents' names are offered, to look in. The lead line is in
    the question's language, as ``notice`` is (``language/texts.py``)."""
    lang = question_language(question)
    documents = distinct_documents(nearest)
    lines = [notice]
    if documents:
        lines.append(answer_text("nearest_lead", lang))
        lines += [f"- {h.source}" + (answer_text("page", lang, page=h.page) if h.page else "") for h in documents]
    return Answer(
        question=question,
        answer="\n".join(lines),
        mode="not-found",
        sources=[source_dict(h, n) for n, h in enumerate(documents, start=1)],
        notice=notice,
        verification={"status": "not-found", "claims": []},
    )
