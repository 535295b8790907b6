"""Writing the answer once the passages are known: ``router.AnswerWriter`` chooses the path -
``not_found.py``, ``quoted.py`` (the reader's composition in the documents' words) or
``written.py`` (the model's verified text) - and ``sources.py`` gives every path the same sources."""

from neoc_assistant.answering.router import AnswerWriter

__all__ = ["AnswerWriter"]
