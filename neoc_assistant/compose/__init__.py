"""Composing the shown answer from the found passages (the reader).

``extracts.py`` cuts passages into runs of statements and scores them against the question;
``reader.py`` chooses the extract(s) that answer, or says none does; ``model_choice.py`` lets a
language model make that choice among the same extracts; ``quotes.py`` renders the result as the
documents' own words, with their context, cited.
"""
