import datetime as dt
import re

import pytest
import torch

from dlcourse.data import dates

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def month(name: str) -> int:
    """Month number from a full or three-letter English name, any case."""
    return [m[:3] for m in MONTHS].index(name.lower()[:3]) + 1


def parse(source: str) -> dt.date:
    """An independent reading of one written date (not using the module's formatters)."""
    s = source.lower()
    if m := re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", s):
        day, mon, yy = map(int, m.groups())
        return dt.date(1900 + yy if yy >= 70 else 2000 + yy, mon, day)
    if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", s):
        day, mon, year = map(int, m.groups())
        return dt.date(year, mon, day)
    s = re.sub(r"^(\w+), (the )?", lambda m: "" if m.group(1) in WEEKDAYS or m.group(1)[:3] in
               [w[:3] for w in WEEKDAYS] else m.group(0), s)
    if m := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)? (?:of )?([a-z]+),? (\d{4})", s):
        return dt.date(int(m.group(3)), month(m.group(2)), int(m.group(1)))
    if m := re.fullmatch(r"([a-z]+) (\d{1,2}),? (\d{4})", s):
        return dt.date(int(m.group(3)), month(m.group(1)), int(m.group(2)))
    raise AssertionError(f"cannot parse {source!r}")


def test_same_seed_same_pairs_and_other_seed_other_pairs():
    a = dates.make_dates(200, torch.Generator().manual_seed(0))
    b = dates.make_dates(200, torch.Generator().manual_seed(0))
    c = dates.make_dates(200, torch.Generator().manual_seed(1))
    assert a == b and a != c and len(a) == 200


def test_targets_are_iso_dates_of_the_source_date_in_every_format():
    pairs = dates.make_dates(3000, torch.Generator().manual_seed(0))
    seen_formats = set()
    for source, target in pairs:
        date = dt.date.fromisoformat(target)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", target) and dates.START <= date <= dates.END
        assert parse(source) == date, (source, target)
    for name in dates.FORMATS:
        source = dates.format_date(dt.date(2021, 3, 3), name)
        seen_formats.add(name)
        assert parse(source) == dt.date(2021, 3, 3), (name, source)
    assert {s for s, _ in pairs if s.isupper()} and {s for s, _ in pairs if s.islower()}  # the case varies


def test_formats_weekdays_ordinals_and_cases():
    d = dt.date(2021, 3, 3)  # a Wednesday
    assert dates.format_date(d, "slash") == "03/03/21"
    assert dates.format_date(d, "month_day") == "March 3, 2021"
    assert dates.format_date(d, "weekday") == "Wednesday, March 3, 2021"
    assert dates.format_date(d, "short", "lower") == "mar 3 2021"
    assert dates.format_date(d, "ordinal", "upper") == "WEDNESDAY, THE 3RD OF MARCH 2021"
    assert [dates.format_date(dt.date(2021, 3, k), "ordinal").split()[2] for k in (1, 2, 11, 12, 13, 21, 22, 23)] == \
        ["1st", "2nd", "11th", "12th", "13th", "21st", "22nd", "23rd"]


def test_several_dates_per_line():
    pairs = dates.make_dates(300, torch.Generator().manual_seed(0), num_dates=(1, 3))
    counts = {len(t.split()) for _, t in pairs}
    assert counts == {1, 2, 3}
    for source, target in pairs:
        parts = source.split(dates.SEPARATOR)
        assert len(parts) == len(target.split(" "))
        assert [parse(p).isoformat() for p in parts] == target.split(" ")
    assert all(len(t.split()) == 2 for _, t in dates.make_dates(20, torch.Generator().manual_seed(0), num_dates=2))


def test_max_source_len_and_formats_restrict_the_sources():
    pairs = dates.make_dates(500, torch.Generator().manual_seed(0), max_source_len=12)
    assert max(len(s) for s, _ in pairs) <= 12
    pairs = dates.make_dates(100, torch.Generator().manual_seed(0), formats=["slash"])
    assert all(re.fullmatch(r"\d\d/\d\d/\d\d", s) for s, _ in pairs)


def test_bad_input_raises_clear_errors():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="unknown date format 'iso'.*slash"):
        dates.make_dates(10, g, formats=["iso"])
    with pytest.raises(ValueError, match="unknown date format"):
        dates.format_date(dt.date(2021, 3, 3), "rfc")
    with pytest.raises(ValueError, match="case must be"):
        dates.format_date(dt.date(2021, 3, 3), "short", "camel")
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive int"):
            dates.make_dates(n, g)
    with pytest.raises(TypeError, match="torch.Generator"):
        dates.make_dates(10, 0)
    with pytest.raises(ValueError, match="non-empty sequence of format names"):
        dates.make_dates(10, g, formats=[])
    with pytest.raises(ValueError, match="max_source_len must be an int of at least 8"):
        dates.make_dates(10, g, max_source_len=5)
    with pytest.raises(ValueError, match="num_dates"):
        dates.make_dates(10, g, num_dates=(3, 1))
    with pytest.raises(ValueError, match="num_dates"):
        dates.make_dates(10, g, num_dates=0)


def test_vocab_round_trip_and_specials():
    v = dates.SOURCE_VOCAB
    assert v.itos[:3] == ["<pad>", "<sos>", "<eos>"] and (v.pad, v.sos, v.eos) == (0, 1, 2)
    for source, target in dates.make_dates(500, torch.Generator().manual_seed(0), num_dates=(1, 2)):
        assert v.decode(v.encode(source)) == source
        ids = dates.TARGET_VOCAB.encode(target, sos=True, eos=True)
        assert ids[0] == 1 and ids[-1] == 2 and dates.TARGET_VOCAB.decode(ids) == target
    assert v.decode([v.stoi["a"], v.eos, v.stoi["b"]]) == "a"  # stops at <eos>
    assert v.decode(torch.tensor([v.sos, v.stoi["y"], v.pad])) == "y"


def test_vocab_rejects_unknown_characters_and_bad_indices():
    with pytest.raises(ValueError, match=r"character '\?' at position 5"):
        dates.SOURCE_VOCAB.encode("March? 3")
    with pytest.raises(ValueError, match="character 'a'"):
        dates.TARGET_VOCAB.encode("2021-a")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        dates.TARGET_VOCAB.decode([99])
    with pytest.raises(TypeError, match="string"):
        dates.SOURCE_VOCAB.encode(["M"])
    with pytest.raises(ValueError, match="distinct"):
        dates.Vocab("abca")


def test_pad_batch_shapes_lengths_and_mask():
    ids, lengths = dates.pad_batch(["3.3.2021", "03/03/21", "mar 3 2021"], dates.SOURCE_VOCAB)
    assert ids.shape == (3, 10) and ids.dtype == torch.long and lengths.tolist() == [8, 8, 10]
    mask = ids != dates.SOURCE_VOCAB.pad
    assert mask.sum(1).tolist() == lengths.tolist() and not mask[0, 8:].any()
    y, ly = dates.pad_batch(["2021-03-03"], dates.TARGET_VOCAB, sos=True, eos=True)
    assert y.shape == (1, 12) and ly.tolist() == [12] and y[0, 0] == 1 and y[0, -1] == 2
    with pytest.raises(ValueError, match="not one string"):
        dates.pad_batch("3.3.2021", dates.SOURCE_VOCAB)


def test_bucket_by_length():
    pairs = [("03/03/21", ""), ("mar 3 2021", ""), ("Wednesday, March 3, 2021", "")]
    assert dates.bucket_by_length(pairs, [8, 10, 20, 30]) == {"8-9": [0], "10-19": [1], "20-29": [2]}
    with pytest.raises(ValueError, match="outside the edges 8..9"):
        dates.bucket_by_length(pairs, [8, 10])
    with pytest.raises(ValueError, match="increasing"):
        dates.bucket_by_length(pairs, [10, 8])


def test_read_dates_accepts_exactly_what_the_generator_writes():
    pairs = dates.make_dates(500, torch.Generator().manual_seed(3), num_dates=(1, 3))
    assert all(" ".join(map(dates.iso, dates.read_dates(s))) == t for s, t in pairs)
    assert dates.read_dates("MARCH 3, 2021") == [dt.date(2021, 3, 3)]
    for text in ["hello", "", "3/3/21", "March 03, 2021", "Tuesday, the 3rd of March 2021", "1 Jan 1950",
                 "March 3 2021", "3 March 2021;12/05/99", None]:
        assert dates.read_dates(text) is None, text
