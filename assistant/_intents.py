"""Intent rules in pt, zh and en: what a message asks for, and which result it points at.

Rules catch the closed set of conversational moves (more, details, interest, thanks ...);
whether free text is a partner search or out of scope is decided by the taxonomy and,
when that is silent, by similarity to example requests with the bundled encoder.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from corpus import Place, fold

GREETING = re.compile(
    r"^(ol[aá]|oi|bom dia|boa tarde|boa noite|hello|hi|hey|hiya|good (morning|afternoon|evening)|"
    r"你好|您好|嗨|哈喽|早上好|下午好|晚上好|大家好)[\s!.,，。！~]*$",
    re.I,
)
GREETING_PREFIX = re.compile(r"^(ol[aá]|oi|bom dia|boa tarde|hello|hi|hey|你好|您好)[\s!.,，。！]+", re.I)
HELP = re.compile(
    r"^(\?|ajuda|help|socorro|帮助|帮忙|使用说明|怎么用)[\s!?？.]*$|como funciona|o que (é que )?(voc[eê] )?(faz|fazes|pode|podes)|"
    r"what can you do|how does (this|it) work|what do you do|你能做什么|你可以做什么|怎么使用|如何使用|你是谁|who are you|quem [ée]s",
    re.I,
)
THANKS = re.compile(r"^(muito )?(obrigad[oa]|obg|valeu|thanks|thank you|thx|ty|cheers|谢谢|多谢|感谢|谢啦|唔该)([\s!.,，。！]|$)", re.I)
GOODBYE = re.compile(r"^(adeus|at[eé] (logo|breve|j[aá])|tchau|bye|goodbye|see you|再见|拜拜|回头见)[\s!.,，。！]*$", re.I)
MORE = re.compile(
    r"^(e\s+)?(mais|mais resultados|mostra(-me)? mais|outros|outras|seguintes?|pr[oó]xim[oa]s?|continua|ver mais|"
    r"mostra(-me)? mais|mostre(-me)? mais|mostrar mais|h[aá] mais|tem mais|"
    r"more|more results|show more|show me more|see more|next|next page|others|any more|anything else|any others|"
    r"更多|更多结果|还有吗|还有呢|还有没有|还有其他的?吗?|下一页|再来几个|再看看|继续|其他的?|换一批|"
    r"有冇多啲|仲有冇|仲有|多啲|再嚟啲|再多[一几]?[个家些]?)[\s!?？.,，。]*$",
    re.I,
)
DETAILS = re.compile(
    r"detalhe|mais (informa[cç][aã]o|info|sobre)|fale(-me)? (mais )?sobre|conte[- ]me|saber mais|"
    r"details?|tell me (more )?about|more (info|information) (on|about)|info (on|about)|more about|what is|"
    r"详细|详情|介绍一下|介绍|具体信息|更多信息|资料|了解一下|是什么",
    re.I,
)
CONTACT = re.compile(
    r"interess|interested|contact|contat|falar com|p[oô]r-me em contacto|quero parceria|"
    r"get in touch|reach out|introduc|connect me|put me in touch|"
    r"感兴趣|联系|对接|合作意向|联络|洽谈|引荐|想合作",
    re.I,
)
BACK = re.compile(
    r"^(voltar|volta|regressar)( [àa] lista| aos resultados)?|^back( to the (list|results))?$|^(show|see) the list( again)?|"
    r"^(返回|回到)(列表|结果)|^再看一下列表",
    re.I,
)
POLITE = re.compile(r"(^|\s|[,，])(please|pls|por favor|se faz favor|s\.f\.f\.?|请|麻烦(你|您)?|吧)(?=$|\s|[,，!?.。！？])", re.I)
CLEAR_FILTERS = re.compile(r"limpa[r]? (os )?filtros|sem filtros|clear (the )?filters|reset filters|remove filters|清除筛选|取消筛选|去掉筛选", re.I)

_ORDINALS = {
    "primeiro": 1, "primeira": 1, "segundo": 2, "segunda": 2, "terceiro": 3, "terceira": 3, "quarto": 4,
    "quarta": 4, "quinto": 5, "quinta": 5, "sexto": 6, "sétimo": 7, "oitavo": 8, "nono": 9, "décimo": 10,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "last": -1, "último": -1, "última": -1,
}
_ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_NUMBER = re.compile(r"(?<![\d.])(\d{1,3})(?![\d.])")
_ZH_ORDINAL = re.compile(r"第\s*([一二两三四五六七八九十\d]{1,3})\s*(个|家|项|条|名|位)?|([一二两三四五六七八九十])号")

EXCLUDE_BEFORE = re.compile(
    r"(sem ser|sem|exceto|excepto|menos|fora|tirando|excluindo|n[aã]o quero|n[aã]o|nada de|"
    r"don'?t want|do not want|not|except|excluding|other than|without|but not|apart from|, no|^no|"  # not a bare "no": Portuguese "in the"
    r"除了|不想要|不要|不包括|排除|不含|不在|非|唔要|唔好|唔使|去掉|去除|剔除)\s*(os|as|o|a|the|any|all)?\s*(em|no|na|nos|nas|de|do|da|dos|das|in|from|the|在)?\s*$",
    re.I,
)
EXCLUDE_AFTER = re.compile(r"^\s*(除外|以外|之外|不要|不算)")
REFINE_START = re.compile(
    r"^(e\s|e\?|e só|só|apenas|somente|agora|mas só|sem ser|exceto|menos|"
    r"and\s|and\?|only|just|what about|how about|now|but only|not\s|except|excluding|"
    r"那|那么|还有|只|仅|就要|换成|除了|不要|改成)",
    re.I,
)


# "Agora outra coisa: ...", "Now something else", "换个话题": whatever follows is a new search.
NEW_TOPIC = re.compile(
    r"outra coisa|outro assunto|nova pesquisa|mudando de assunto|agora procuro|something else|another thing|new search|"
    r"different topic|now i('m| am) looking|换个话题|另外|换一个|新的搜索|我还想找|另一个问题",
    re.I,
)


def without_courtesy(text: str) -> str:
    """ "more please" -> "more", "请给我更多" keeps its meaning for the closed-set rules."""
    text = re.sub(r"[吧呢啊呀哦]+(?=[!?。！？\s]*$)", "", text)
    return " ".join(POLITE.sub(" ", text).split()) or text


def clean(text: str) -> str:
    """NFC, no control characters, single spaces."""
    text = unicodedata.normalize("NFC", text or "")
    text = "".join(c if (c.isprintable() or c in "\n\t") else " " for c in text)
    return " ".join(text.split())


def number_in(text: str) -> int | None:
    """The list number a message points at: "2", "o segundo", "第二个", "the last"."""
    m = _ZH_ORDINAL.search(text)
    if m:
        token = m.group(1) or m.group(3)
        if token.isdigit():
            return int(token)
        if token in _ZH_NUM:
            return _ZH_NUM[token]
        if len(token) == 2 and token[0] == "十":
            return 10 + _ZH_NUM.get(token[1], 0)
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        if word in _ORDINALS:
            return _ORDINALS[word]
    m = _NUMBER.search(text)
    return int(m.group(1)) if m else None


def numbers_in(text: str) -> list[int]:
    """Every list number a message points at, in order: "详细介绍一下第1个和第2个" -> [1, 2]."""
    found: list[int] = []
    for m in _ZH_ORDINAL.finditer(text):
        token = m.group(1) or m.group(3)
        n = int(token) if token.isdigit() else _ZH_NUM.get(token) or (10 + _ZH_NUM.get(token[1:], 0) if token[0] == "十" else None)
        if n and n not in found:
            found.append(n)
    if not found:
        for word in re.findall(r"[^\W\d_]+", text.lower()):
            if word in _ORDINALS and _ORDINALS[word] not in found:
                found.append(_ORDINALS[word])
        for m in _NUMBER.finditer(text):
            n = int(m.group(1))
            if n not in found:
                found.append(n)
    return found


SHOW_NUMBER = re.compile(r"^(mostra|mostre|mostrar|ver|abre|abrir|show|see|open|view|看看?|打开)\s*(-me|me)?\s*(o|a|the|number|n[º°o.]?|#|第)?\s*\d{1,3}\b", re.I)
COMMAND_WORDS = {"details": "details", "detail": "details", "detalhes": "detalhes", "detalhe": "detalhe",
                 "interested": "interested", "interessado": "interessado", "interessada": "interessada", "more": "more"}


def fix_command_typos(text: str) -> str:
    """ "detials of 1", "intrested in 2": a command word within one edit (a swap counts as one) of
    its spelling is read as spelled. Only these few words, so nothing else is "corrected"."""
    from rapidfuzz.distance import DamerauLevenshtein

    def fix(m: re.Match) -> str:
        word = m.group(0)
        low = word.lower()
        if low in COMMAND_WORDS or len(low) < 5:
            return word
        for target in COMMAND_WORDS:
            if abs(len(target) - len(low)) <= 1 and DamerauLevenshtein.distance(low, target) <= 1:
                return target
        return word

    return re.sub(r"[A-Za-z]+", fix, text)


@dataclass
class Refinement:
    """Hard filter changes a follow-up asks for."""

    include: list[Place] = field(default_factory=list)
    exclude: list[Place] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    exclude_countries: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    sectors: list[str] = field(default_factory=list)
    exclude_kinds: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.include or self.exclude or self.countries or self.exclude_countries or self.kinds or self.sectors
                    or self.exclude_kinds)


def _excluded(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 14) : start]
    return bool(EXCLUDE_BEFORE.search(before) or EXCLUDE_AFTER.match(text[end : end + 4]))


def refinement(text: str, lexicon, taxonomy, extra_places=None) -> Refinement:
    """Places, countries, kinds and sectors named in ``text``, split into include and exclude.
    ``extra_places`` finds places the lexicon does not know (the records' own regions and cities)."""
    ref = Refinement()
    folded = fold(text)
    positions = {}
    mentions = lexicon.place_mentions(text) + (extra_places(text) if extra_places else [])
    taken: list[tuple[int, int]] = []
    # where two sources name overlapping text ("Porto" and "Porto地区"), the longer name is meant
    for place, term, start in sorted(mentions, key=lambda m: (-len(m[1]), m[2])):
        end = start + len(term)
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        positions.setdefault(place.name, (place, start, end))
    for place, start, end in positions.values():
        (ref.exclude if _excluded(folded, start, end) else ref.include).append(place)
    for code, term, start in lexicon.country_mentions(text):
        target = ref.exclude_countries if _excluded(folded, start, start + len(term)) else ref.countries
        if code not in target:
            target.append(code)
    ref.kinds = []
    for kind, term, start in lexicon._kinds.find(text):  # "companies only, no clusters": the clusters are not wanted
        target = ref.exclude_kinds if _excluded(folded, start, start + len(term)) else ref.kinds
        if kind not in target:
            target.append(kind)
    ref.sectors = [slug for slug, _ in taxonomy.find(text)]
    return ref


# -- search or out of scope ----------------------------------------------------------------
IN_SCOPE = [
    "procuro parceiros industriais", "empresas para colaborar em I&D", "fornecedores para a nossa fábrica",
    "quero encontrar um cluster", "parceiros para joint venture", "distribuidores para os nossos produtos",
    "寻找合作伙伴", "寻找供应商", "想找研发合作机构", "寻找产业集群", "找合资伙伴", "寻找分销商",
    "looking for industrial partners", "find suppliers for our factory", "research institutes for joint R&D",
    "technology transfer partners", "companies for a joint venture", "distributors for our products",
]
OUT_OF_SCOPE = [
    "qual é o tempo amanhã", "conta-me uma anedota", "quem ganhou o jogo de futebol", "receita de bacalhau",
    "escreve um poema", "qual é a capital de França", "que horas são",
    "今天天气怎么样", "给我讲个笑话", "谁赢了足球比赛", "帮我写一首诗", "法国的首都是哪里", "现在几点",
    "what's the weather tomorrow", "tell me a joke", "who won the football match", "write me a poem",
    "what is the capital of France", "what time is it", "recipe for pancakes",
]


class ScopeClassifier:
    """Nearest-example vote between partner-search requests and off-topic chat."""

    def __init__(self, encoder):
        self.encoder = encoder
        self._in = encoder.encode(IN_SCOPE, "query")
        self._out = encoder.encode(OUT_OF_SCOPE, "query")

    def in_scope(self, text: str) -> bool:
        q = self.encoder.encode([text], "query")[0]
        s_in = np.sort(self._in @ q)[-3:].mean()
        s_out = np.sort(self._out @ q)[-3:].mean()
        return bool(s_in >= s_out)
