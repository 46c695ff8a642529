"""The HTML sanitizer against OWASP's XSS filter evasion cheat sheet: after cleaning, no vector can run
script (no script element, no event handler attribute, no javascript:/vbscript:/data:text URL, no
style expression), and plain text with no markup is left exactly as it was."""

from __future__ import annotations

import asyncio
import html
import re

import pytest

from llmswitch.guardrails.base import Context
from llmswitch.guardrails.sanitize import Sanitizer, url_is_safe

# from the OWASP XSS Filter Evasion Cheat Sheet (each a way past naive filters)
OWASP_VECTORS = [
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    "javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=javascript:alert(&quot;XSS&quot;)>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    '<a onmouseover="alert(document.cookie)">xxs link</a>',
    "<a onmouseover=alert(document.cookie)>xxs link</a>",
    '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
    "<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC= onmouseover=\"alert('xxs')\">",
    "<IMG onmouseover=\"alert('xxs')\">",
    '<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>',
    '<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0D;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    '<SCRIPT/XSS SRC="http://xss.example/xss.js"></SCRIPT>',
    '<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>',
    '<SCRIPT/SRC="http://xss.example/xss.js"></SCRIPT>',
    '<<SCRIPT>alert("XSS");//\\<</SCRIPT>',
    "<SCRIPT SRC=http://xss.example/xss.js?< B >",
    "<SCRIPT SRC=//xss.example/.j>",
    "<IMG SRC=\"`<javascript:alert>`('XSS')\"",
    "<iframe src=http://xss.example/scriptlet.html <",
    "\\\";alert('XSS');//",
    '</TITLE><SCRIPT>alert("XSS");</SCRIPT>',
    '<INPUT TYPE="IMAGE" SRC="javascript:alert(\'XSS\');">',
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<IMG DYNSRC=\"javascript:alert('XSS')\">",
    "<IMG LOWSRC=\"javascript:alert('XSS')\">",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<IMG SRC='vbscript:msgbox(\"XSS\")'>",
    "<svg/onload=alert('XSS')>",
    "<BODY ONLOAD=alert('XSS')>",
    "<BGSOUND SRC=\"javascript:alert('XSS');\">",
    "<BR SIZE=\"&{alert('XSS')}\">",
    '<LINK REL="stylesheet" HREF="javascript:alert(\'XSS\');">',
    "<STYLE>@import'http://xss.example/xss.css';</STYLE>",
    '<META HTTP-EQUIV="Link" Content="<http://xss.example/xss.css>; REL=stylesheet">',
    '<STYLE>BODY{-moz-binding:url("http://xss.example/xssmoz.xml#xss")}</STYLE>',
    "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert(\'XSS\');">',
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K">',
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    '<IFRAME SRC=# onmouseover="alert(document.cookie)"></IFRAME>',
    "<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<TABLE><TD BACKGROUND=\"javascript:alert('XSS')\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'\\006a\\0061\\0076\\0061\\0073\\0063\\0072\\0069\\0070\\0074\\003a\\0061\\006c\\0065\\0072\\0074\\0028.1027\\0058.1053\\0053\\0027\\0029'\\0029\">",
    "<DIV STYLE=\"width: expression(alert('XSS'));\">",
    "<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->",
    "<BASE HREF=\"javascript:alert('XSS');//\">",
    '<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.example/scriptlet.html"></OBJECT>',
    '<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAw IiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlh TUyIpOzwvc2NyaXB0Pjwvc3ZnPg==" type="image/svg+xml" AllowScriptAccess="always"></EMBED>',
    '<XML ID="xss"><I><B><IMG SRC="javas<!-- -->cript:alert(\'XSS\')"></B></I></XML>',
    '<HTML><BODY><?xml:namespace prefix="t" ns="urn:schemas-microsoft-com:time"><?import namespace="t" implementation="#default#time2"><t:set attributeName="innerHTML" to="XSS<SCRIPT DEFER>alert(&quot;XSS&quot;)</SCRIPT>"></BODY></HTML>',
    '<SCRIPT>document.write("<SCRI");</SCRIPT>PT SRC="httx://xss.example/xss.js"></SCRIPT>',
    '<A HREF="http://66.102.7.147/">XSS</A>',
    "<A HREF=\"javascript:document.location='http://www.example.com/'\">XSS</A>",
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<details open ontoggle=alert(1)>",
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1))",
    "![img](javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    "[x](&#106;avascript:alert(1))",
]

_DANGER = [
    re.compile(r"<\s*script", re.I),
    re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    re.compile(
        r"(?:href|src|action|formaction|background|dynsrc|lowsrc|data)\s*=\s*[\"']?\s*(?:javascript|vbscript|data:text)",
        re.I,
    ),
    re.compile(
        r"<\s*(?:iframe|frame|frameset|object|embed|base|meta|link|style|bgsound|xml|svg|math|form|button)\b", re.I
    ),
    re.compile(r"expression\s*\(", re.I),
    re.compile(r"\]\(\s*<?(?:javascript|vbscript|data:text)", re.I),
    re.compile(r"<(?:javascript|vbscript):", re.I),
]


@pytest.fixture(scope="module")
def sanitizer() -> Sanitizer:
    return Sanitizer("html", modes=frozenset({"post_call"}))


@pytest.mark.parametrize("vector", OWASP_VECTORS)
def test_owasp_vectors_are_neutralised(sanitizer: Sanitizer, vector: str) -> None:
    cleaned, _ = sanitizer.clean(vector)
    # decode entities (twice: &amp;#106; hides one level) as a browser would before judging
    decoded = html.unescape(html.unescape(cleaned))
    for danger in _DANGER:
        assert not danger.search(cleaned), (danger.pattern, cleaned)
    for tag in re.findall(r"<[a-z][^>]*>", cleaned, re.I):
        assert not re.search(r"(?:javascript|vbscript):", html.unescape(tag), re.I), cleaned
    assert "<script" not in decoded.lower() or "&lt;script" in cleaned.lower()
    assert len(OWASP_VECTORS) >= 80


@pytest.mark.parametrize(
    "text",
    [
        "if a < b and b > c then print(a & b)",
        "Use `x<5` in the loop; 3 > 2 is true.",
        "A plain answer with [a link](https://example.com/docs?a=1&b=2) and ![img](images/cat.png).",
        "mail <EMAIL_ADDRESS_1> about it",
    ],
)
def test_text_without_markup_is_left_alone(sanitizer: Sanitizer, text: str) -> None:
    assert sanitizer.clean(text) == (text, 0)


def test_allowed_markup_is_kept(sanitizer: Sanitizer) -> None:
    text = '<p>Hi <b>there</b>, see <a href="https://example.com">docs</a>.</p>'
    cleaned, _ = sanitizer.clean(text)
    assert cleaned == '<p>Hi <b>there</b>, see <a href="https://example.com" rel="noopener noreferrer">docs</a>.</p>'


def test_masking_tokens_survive_cleaning(sanitizer: Sanitizer) -> None:
    out = asyncio.run(sanitizer.check(["<script>x</script>write to <EMAIL_ADDRESS_1>"], Context(phase="output")))
    assert out.texts == ["write to <EMAIL_ADDRESS_1>"]
    assert out.found == {"UNSAFE_MARKUP": 1}


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.com", True),
        ("/relative/path", True),
        ("mailto:a@example.com", True),
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("javascript:alert(1)", False),
        (" JAVASCRIPT:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("&#106;avascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:x", False),
    ],
)
def test_url_is_safe(url: str, safe: bool) -> None:
    assert url_is_safe(url) is safe
