"""Split loaded pages into chunks that the embedding model reads whole.

all-MiniLM-L6-v2 truncates input after 256 word pieces (including [CLS] and
[SEP]), so chunks are measured in *its* tokenizer's pieces, not characters.
LangChain's ``MarkdownHeaderTextSplitter`` finds sections and
``RecursiveCharacterTextSplitter.from_huggingface_tokenizer`` sizes the pieces;
each chunk starts with its heading path ("Flood SOP > Evacuation triggers") so
both the embedding and BM25 see which section the text belongs to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from neoc_assistant.ingest.limits import check_chunk_count
from neoc_assistant.ingest.loaders import LoadedDocument

HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
MAX_HEADING_TOKENS = 48


@dataclass(frozen=True)
class Chunk:
    index: int
    page: int | None
    section: str
    text: str  # heading line + body: exactly what is embedded and shown
    ocr_confidence: float | None = None  # its page's, when the page was read by OCR

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


class Chunker:
    """Heading-aware, token-sized splitting; one instance per tokenizer."""

    def __init__(self, tokenizer, chunk_size: int, chunk_overlap: int, model_max_tokens: int):
        self._tokenizer = tokenizer
        # [CLS] and [SEP] take two of the model's positions.
        self.max_tokens = min(chunk_size, model_max_tokens - 2)
        self._overlap = min(chunk_overlap, self.max_tokens // 2)
        self._headers = MarkdownHeaderTextSplitter(HEADERS, strip_headers=True)
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}

    def count(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def _splitter(self, budget: int) -> RecursiveCharacterTextSplitter:
        if budget not in self._splitters:
            self._splitters[budget] = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
                self._tokenizer,
                chunk_size=budget,
                chunk_overlap=min(self._overlap, budget // 3),
                separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
            )
        return self._splitters[budget]

    def split(self, doc: LoadedDocument, max_chunks: int | None = None) -> list[Chunk]:
        """Chunks in reading order; more than ``max_chunks`` fail the file as soon as they are reached."""
        chunks: list[Chunk] = []
        for page in doc.pages:
            if not page.text.strip():
                continue
            for section, body in self._sections(page.text, doc.title):
                heading = self._fit_heading(section)
                budget = max(32, self.max_tokens - (self.count(heading) + 1 if heading else 0))
                for piece in self._splitter(budget).split_text(body):
                    piece = piece.strip()
                    if not piece:
                        continue
                    text = f"{heading}\n{piece}" if heading else piece
                    for part in self._enforce_limit(text):
                        chunks.append(Chunk(len(chunks), page.number, section, part, page.ocr_confidence))
                        check_chunk_count(len(chunks), max_chunks)
        return chunks

    def _sections(self, text: str, title: str) -> list[tuple[str, str]]:
        """(heading path, body) pairs; text without headings is one titled section."""
        if "#" not in text:
            return [(title, text)]
        out = []
        for part in self._headers.split_text(text):
            names = [part.metadata[key] for _, key in HEADERS if key in part.metadata]
            body = part.page_content.strip()
            if body:
                out.append((" > ".join(names) if names else title, body))
        return out

    def _fit_heading(self, heading: str) -> str:
        heading = " ".join(heading.split())
        if not heading or self.count(heading) <= MAX_HEADING_TOKENS:
            return heading
        ids = self._tokenizer.encode(heading, add_special_tokens=False)[:MAX_HEADING_TOKENS]
        return self._tokenizer.decode(ids)

    def _enforce_limit(self, text: str) -> list[str]:
        """Hard-split by tokens in the rare case the splitter's count differs (never truncate)."""
        if self.count(text) <= self.max_tokens:
            return [text]
        ids = self._tokenizer.encode(text, add_special_tokens=False)
        step = self.max_tokens - 8
        return [self._tokenizer.decode(ids[i : i + step]) for i in range(0, len(ids), step)]
