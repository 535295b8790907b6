"""Reading the officer's question: what it names, asks for and how it compares with another question.

The response cache's guard (may the answer to A be served for B?), the
answerability check and the answer composer all read a question the same way,
from here: ``question_features`` (the reduced reading), ``guard`` (comparing
two readings), ``lexicon`` / ``vocabulary`` (what the knowledge base's own
words teach the reading, per kb version).
"""
