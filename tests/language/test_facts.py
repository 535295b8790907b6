"""Figures read from a sentence must not depend on what surrounds them: the reader's quote and
the passage it came from have to yield the same numbers, or a quoted figure looks invented."""
from neoc_assistant.language.facts import extract_facts

PASSAGE = ("Previous decade totals for billion-dollar climate-related disasters (inflation -adjusted) "
           "were 33 (1980-1989 ), 57 (1990-1999), 67 (2000-2009), and 131 \n(2010-2019). Over these")


def test_a_span_of_years_is_two_years_not_a_phone_number():
    facts = extract_facts("and 131 (2010-2019).")
    assert facts.phones == set()
    assert {"131", "2010", "2019"} <= facts.all_numbers()


def test_a_quote_yields_the_numbers_its_passage_yields():
    quote = "were 33 (1980-1989 ), 57 (1990-1999), 67 (2000-2009), and 131 (2010-2019)."
    assert extract_facts(quote).all_numbers() <= extract_facts(PASSAGE).all_numbers()
    assert "131" in extract_facts(PASSAGE).all_numbers()


def test_phone_numbers_stay_phone_numbers():
    assert extract_facts("Call 01-4200105 now").phones == {"014200105"}
    assert extract_facts("call (01) 420 0105").phones == {"014200105"}
    assert extract_facts("+977 1 4211219").phones == {"97714211219"}
    assert extract_facts("line 2010-2019-2020").phones == {"201020192020"}  # not a span of years
