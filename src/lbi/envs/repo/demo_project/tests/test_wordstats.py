import pytest
from wordstats import chunks, clamp, is_palindrome, median, top_words, word_count, words


def test_words_lowercase():
    assert words("Hello, World! it's") == ["hello", "world", "it's"]


def test_word_count():
    assert word_count("a b  c") == 3
    assert word_count("") == 0


def test_top_words_ties_alphabetical():
    assert top_words("b a b c a b", 2) == [("b", 3), ("a", 2)]
    assert top_words("z y x", 2) == [("x", 1), ("y", 1)]


def test_palindrome():
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert not is_palindrome("abca")


def test_clamp():
    assert clamp(5, 0, 10) == 5
    assert clamp(-1, 0, 10) == 0
    assert clamp(11, 0, 10) == 10
    assert clamp(10, 0, 10) == 10


def test_clamp_bad_interval():
    with pytest.raises(ValueError):
        clamp(1, 2, 1)


def test_median_odd_even():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_median_empty():
    with pytest.raises(ValueError):
        median([])


def test_chunks():
    assert chunks(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert chunks([], 3) == []
