"""The second check a semantic hit must pass: the two queries say the same thing, word for word.

Embedding similarity cannot tell "flights from Paris to NYC" from "flights from NYC to Paris"
(all-MiniLM-L6-v2 scores that pair 0.996), nor a swapped number, name or negation: adversarial
paraphrase pairs (PAWS) reach 0.99 while meaning something else. So a candidate found by cosine
similarity is served only when a rule that cannot be fooled that way agrees too:

1. The same words. After lower-casing, dropping punctuation, articles, forms of "be"/"do" and a
   few fillers ("please", "also", "just"…), spelling contractions out ("don't" as "do not") and
   numbers up to twenty as digits, and folding a plural "s", both queries hold the same
   multiset of words: every number, name, negation, preposition and content word is in both.
   A substituted word ("hotels" for "homes"), an added "not", "11" for "12": no hit.
2. In the same order, up to one move of a phrase. The word sequences are equal, or equal after
   swapping two adjacent spans of at least two words, one of which begins with a marker that
   carries its role along (a preposition, conjunction or wh-word): "to NYC from Paris" for
   "from Paris to NYC" is still a hit, "from NYC to Paris" is not, nor "the man bit the dog".

This trades recall for precision on purpose: a miss costs one upstream call, a wrong hit serves a
wrong answer. On PAWS-Wiki pairs it keeps precision at 1.0 with recall near 7% of PAWS's (mostly
reworded) positives; paraphrases that keep their words (articles, "what's"/"what is", plurals,
moved clauses, filler) still hit. See docs/caching.md.

    >>> same_meaning("What is the capital of France?", "what's the capital of france")
    True
    >>> same_meaning("flights from Paris to NYC", "flights from NYC to Paris")
    False
"""

from __future__ import annotations

from collections import Counter

from llmswitch.cache.semantic.wordpiece import basic_tokens

__all__ = ["same_meaning", "word_bag", "words"]

# words whose presence or absence does not change what a query asks
_IGNORED = frozenset(
    "a an the is are was were be been being am do does did s ' \" ` "  # noqa: SIM905 (a word list)
    "also then just please really actually currently still now already ever even".split()
)

# words that carry a phrase's role with it when the phrase moves
_MARKERS = frozenset(
    "about above across after against along among around as at before behind below beneath "  # noqa: SIM905
    "beside between beyond but by despite during except for from in inside into like near of off on "
    "onto out outside over past since than through throughout till to toward towards under until "
    "unto upon via with within without and or nor so yet because although though while when "
    "whenever where wherever whereas if unless whether once that which who whom whose what why how".split()
)

_MIN_SPAN = 2
# past this many words only the same order counts: the phrase-move search is quadratic
_MAX_MOVE_WORDS = 256


def _fold(word: str) -> str:
    # a plural rarely changes what is asked (Porter's step 1a, roughly); "ss" (class) is no plural
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    return word[:-1]


# one spelling for what is written two ways: contractions, and numbers up to twenty in words
_NOT_BASES = {"can": "can", "won": "will", "ain": "", "shan": "shall"}
_CLITICS = {"ll": "will", "ve": "have", "re": "are", "m": "am"}
_NUMBERS = {
    word: str(n)
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "  # noqa: SIM905
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBERS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80"})
_NUMBERS.update({"ninety": "90", "hundred": "100", "thousand": "1000", "cannot": "can not"})


def _spelled(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for i, token in enumerate(tokens):
        if token == "'":
            continue  # punctuation, dropped anyway; the word before it stays last in ``out``
        if i >= 2 and tokens[i - 1] == "'":
            # "don't" -> don ' t, "we'll" -> we ' ll (BERT splits at the apostrophe)
            if token == "t" and out and out[-1].endswith("n"):
                stem = out.pop()
                base = _NOT_BASES.get(stem, stem[:-1])
                out.extend([base, "not"] if base else ["not"])
                continue
            if token in _CLITICS:
                out.append(_CLITICS[token])
                continue
        out.extend(_NUMBERS.get(token, token).split())
    return out


def words(text: str) -> list[str]:
    """The words of ``text`` the check compares, in order."""
    return [_fold(w) for w in _spelled(basic_tokens(text)) if w.isalnum() and w not in _IGNORED]


def word_bag(text: str) -> str:
    """What two queries share whenever ``same_meaning`` holds for them: their words, sorted.

    The index keeps these per scope, so a question whose words no cached question has is a miss
    at once, without embedding it.
    """
    return " ".join(sorted(words(text)))


def _one_phrase_move(a: list[str], b: list[str]) -> bool:
    """``b`` is ``a`` with two adjacent spans (each >= 2 words, one led by a marker) swapped."""
    start = 0
    while a[start] == b[start]:
        start += 1
    end = len(a)
    while a[end - 1] == b[end - 1]:
        end -= 1
    for cut in range(start + _MIN_SPAN, end - _MIN_SPAN + 1):
        if a[cut:end] + a[start:cut] == b[start:end] and (a[start] in _MARKERS or a[cut] in _MARKERS):
            return True
    return False


def same_meaning(cached: str, query: str) -> bool:
    """Whether a cached query and a new one may share an answer (see the module docstring)."""
    a, b = words(cached), words(query)
    if not a or not b:
        return False  # nothing to compare: only the exact cache may answer such a query
    if a == b:
        return True
    if len(a) > _MAX_MOVE_WORDS or Counter(a) != Counter(b):
        return False
    return _one_phrase_move(a, b)
