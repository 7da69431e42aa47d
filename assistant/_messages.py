"""Everything the assistant says, in Portuguese, Chinese and English."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "greeting": {
        "pt": "Olá! Sou o assistente da CPC Alliance: ajudo a encontrar parceiros em Portugal e na China (clusters, empresas e institutos). Diga-me o que procura, por exemplo «fabricantes de moldes na China».",
        "zh": "您好！我是CPC联盟（葡中产业集群联盟）助手，帮您在葡萄牙和中国寻找合作伙伴（产业集群、企业和研究机构）。请告诉我您在找什么，例如“葡萄牙的软木企业”。",
        "en": "Hello! I'm the CPC Alliance assistant: I help you find partners in Portugal and China (clusters, companies and institutes). Tell me what you are looking for, e.g. “Portuguese cork companies”.",
    },
    "private_only": {
        "pt": "Para pedir uma apresentação ou apagar os seus dados, escreva-me numa conversa privada (toque no meu nome e em «Enviar mensagem»): num grupo, os seus dados ficariam à vista de todos os membros.",
        "zh": "如需申请对接或删除您的数据，请与我私聊（点击我的名字，再点“发消息”）：在群组中，您的信息会被所有成员看到。",
        "en": "To ask for an introduction or to delete your data, write to me in a private chat (tap my name, then “Send message”): in a group, your details would be seen by every member.",
    },
    "help": {
        "pt": "Encontro clusters, empresas e institutos em Portugal e na China para I&D conjunta, fornecimento, transferência de tecnologia, joint ventures ou distribuição. Escreva o que procura em português, chinês ou inglês. Exemplos:\n- fabricantes de moldes na China\n- clusters de calçado em Fujian\n- parceiros chineses para baterias\nDepois pode pedir «mais», «detalhes do 2», «só em Zhejiang», «sem ser Ningbo» ou «tenho interesse no 1».",
        "zh": "我可以为联合研发、供应、技术转让、合资或分销，在葡萄牙和中国寻找产业集群、企业和研究机构。请用中文、葡萄牙语或英语描述您的需求。例如：\n- 葡萄牙的软木合作伙伴\n- 葡萄牙的模具企业\n- 葡萄牙汽车零部件产业集群\n之后可以说“更多”、“第2个的详细信息”、“只看北部”、“除了里斯本”或“我对第1个感兴趣”。",
        "en": "I find clusters, companies and institutes in Portugal and China for joint R&D, supply, technology transfer, joint ventures or distribution. Write what you need in English, Portuguese or Chinese. For example:\n- Portuguese cork companies\n- mould clusters in Zhejiang\n- Chinese partners for lithium batteries\nThen say “more”, “details of 2”, “only in Zhejiang”, “not Ningbo” or “I'm interested in 1”.",
    },
    "results": {
        "pt": "Estas são as organizações mais relevantes para «{query}»{filters} ({count}):",
        "zh": "与“{query}”最相关的机构{filters}（{count}）：",
        "en": "These are the best matches for “{query}”{filters} ({count}):",
    },
    "results_more": {
        "pt": "Mais resultados para «{query}»{filters} ({count}):",
        "zh": "“{query}”的更多结果{filters}（{count}）：",
        "en": "More results for “{query}”{filters} ({count}):",
    },
    # how many matches a search found in all pages (what is less close is never counted here)
    "match_count": {"pt": "{n} correspondências ao todo", "zh": "共{n}个匹配结果", "en": "{n} matches in all"},
    "match_count_one": {"pt": "1 correspondência", "zh": "共1个匹配结果", "en": "1 match"},
    "hint": {
        "pt": "Pode pedir «mais», «detalhes do 2» ou «tenho interesse no 1», ou afinar: «só clusters», «só em Zhejiang», «sem ser Ningbo».",
        "zh": "您可以说“更多”、“第2个的详细信息”或“我对第1个感兴趣”，也可以缩小范围：“只要企业”、“只看浙江”、“除了宁波”。",
        "en": "You can say “more”, “details of 2” or “I'm interested in 1”, or narrow it down: “only clusters”, “only in Zhejiang”, “not Ningbo”.",
    },
    "no_results": {
        "pt": "Não encontrei organizações para «{query}»{filters}. Experimente uma pesquisa mais ampla: retire um filtro (diga «limpar filtros») ou use termos mais gerais.",
        "zh": "没有找到符合“{query}”{filters}的机构。请尝试放宽条件：去掉一个筛选（可以说“清除筛选”）或使用更宽泛的词。",
        "en": "I found no organisations for “{query}”{filters}. Try a broader search: drop a filter (say “clear filters”) or use more general words.",
    },
    "nothing_fits": {
        "pt": "Não encontrei nenhuma organização que corresponda a «{query}»{filters}: o diretório da CPC Alliance não tem esse parceiro.{nearest} Pode tentar outro setor ou dizer «tenho interesse» para que a equipa procure por si.",
        "zh": "目录中没有与“{query}”{filters}相符的机构。{nearest}您可以换一个行业搜索，或说“我感兴趣”，由联盟工作人员帮您寻找。",
        "en": "Nothing in the CPC Alliance directory fits “{query}”{filters}.{nearest} You can try another sector, or say “I'm interested” and the team will look for you.",
    },
    "nearest_sectors": {
        "pt": " Os setores mais próximos que temos: {sectors}.",
        "zh": "最接近的行业：{sectors}。",
        "en": " The closest sectors we have: {sectors}.",
    },
    "less_close": {
        "pt": "Essas eram todas as correspondências próximas para «{query}». Menos próximas, caso ajudem:",
        "zh": "与“{query}”相近的结果已全部列出。以下是相关度较低的机构，供参考：",
        "en": "Those were all the close matches for “{query}”. Less close, in case they help:",
    },
    "only_less_close": {
        "pt": "Nada corresponde bem a «{query}»{filters}. O mais próximo, menos próximo do que pediu:",
        "zh": "没有与“{query}”{filters}完全相符的机构。以下是相关度较低的结果，供参考：",
        "en": "Nothing fits “{query}”{filters} closely. The nearest, less close than you asked for:",
    },
    "no_more": {
        "pt": "Não há mais resultados para «{query}». Experimente outra pesquisa ou retire um filtro.",
        "zh": "“{query}”没有更多结果了。可以换个说法搜索，或去掉一个筛选条件。",
        "en": "There are no more results for “{query}”. Try another search or drop a filter.",
    },
    "no_search": {
        "pt": "Ainda não fez nenhuma pesquisa. Diga-me que tipo de parceiro procura, por exemplo «fornecedores de cortiça».",
        "zh": "您还没有搜索。请告诉我您在找什么样的合作伙伴，例如“葡萄牙的模具企业”。",
        "en": "You haven't searched yet. Tell me what kind of partner you need, e.g. “Chinese mould makers”.",
    },
    "which_one": {
        "pt": "De qual organização? Indique o número da última lista, por exemplo «detalhes do 2».",
        "zh": "请问是哪一个机构？请说出上一个列表中的编号，例如“第2个的详细信息”。",
        "en": "Which organisation? Give its number in the last list, e.g. “details of 2”.",
    },
    "bad_number": {
        "pt": "Não há o número {n} na última lista (vai de 1 a {max}).",
        "zh": "上一个列表中没有第{n}个（编号为1到{max}）。",
        "en": "There is no number {n} in the last list (it goes from 1 to {max}).",
    },
    "details_hint": {
        "pt": "Se quiser que a equipa da CPC Alliance faça o contacto, diga «tenho interesse».",
        "zh": "如需CPC联盟工作人员为您对接，请说“我感兴趣”。",
        "en": "If you want the CPC Alliance team to make the introduction, say “I'm interested”.",
    },
    "handoff": {
        "pt": "Registei o seu interesse em {name} (pedido n.º {lead}). A equipa da CPC Alliance vai dar seguimento. Site público: {website}",
        "zh": "已记录您对{name}的合作意向（编号 {lead}），CPC联盟工作人员将会跟进。官方网站：{website}",
        "en": "I've recorded your interest in {name} (request no. {lead}). The CPC Alliance team will follow up. Public website: {website}",
    },
    "no_website": {"pt": "nenhum conhecido", "zh": "暂无（未找到公开网站）", "en": "none known"},
    "thanks": {
        "pt": "De nada! Se precisar de mais parceiros, é só perguntar.",
        "zh": "不客气！如需寻找更多合作伙伴，随时问我。",
        "en": "You're welcome! Ask any time you need more partners.",
    },
    "goodbye": {
        "pt": "Até breve e boas parcerias!",
        "zh": "再见，祝合作顺利！",
        "en": "Goodbye, and good luck with your partnerships!",
    },
    "out_of_scope": {
        "pt": "Só posso ajudar a encontrar parceiros (clusters, empresas e institutos) em Portugal e na China. Por exemplo: «fornecedores de calçado na China».",
        "zh": "我只能帮您在葡萄牙和中国寻找合作伙伴（产业集群、企业和研究机构）。例如：“葡萄牙的葡萄酒企业”。",
        "en": "I can only help you find partners (clusters, companies and institutes) in Portugal and China. For example: “Chinese footwear suppliers”.",
    },
    "greeting_chat": {
        "pt": "Tudo bem, obrigado! Sou o assistente da CPC Alliance: ajudo a encontrar parceiros em Portugal e na China. Diga-me o que procura, por exemplo «fabricantes de moldes na China».",
        "zh": "我很好，谢谢！我是CPC联盟助手，帮您在葡萄牙和中国寻找合作伙伴。请告诉我您在找什么，例如“葡萄牙的软木企业”。",
        "en": "I'm well, thank you! I'm the CPC Alliance assistant: I help you find partners in Portugal and China. Tell me what you are looking for, e.g. “Portuguese cork companies”.",
    },
    "results_back": {
        "pt": "De volta à lista para «{query}»{filters}:",
        "zh": "返回“{query}”的列表{filters}：",
        "en": "Back to the list for “{query}”{filters}:",
    },
    "no_list": {
        "pt": "Não tenho nenhuma lista nesta conversa (as conversas expiram após algum tempo sem mensagens). Diga-me o que procura para começar uma nova pesquisa, por exemplo «fornecedores de cortiça».",
        "zh": "本次对话中没有结果列表（对话在一段时间无消息后会过期）。请告诉我您在找什么，开始新的搜索，例如“葡萄牙的模具企业”。",
        "en": "I have no list in this conversation (conversations expire after a while without messages). Tell me what you need to start a new search, e.g. “Chinese mould makers”.",
    },
    "clarify_search_or_refine": {
        "pt": "Quer uma nova pesquisa por «{text}», ou afinar a lista atual?",
        "zh": "您是想重新搜索“{text}”，还是在当前列表中缩小范围？",
        "en": "A new search for “{text}”, or narrow the current list?",
    },
    "clarify_refine_what": {
        "pt": "Como quer afinar a lista? Por exemplo «só empresas», «só no Norte» ou «sem ser Lisboa».",
        "zh": "您想怎样缩小范围？例如“只要企业”、“只看北部”或“除了里斯本”。",
        "en": "How should I narrow the list? For example “only companies”, “only in the North” or “not Lisbon”.",
    },
    "nothing_in_place": {
        "pt": "Não há organizações para «{query}»{filters} no diretório. Posso alargar: diga «limpar filtros» ou escolha outra região.",
        "zh": "目录中没有符合“{query}”{filters}的机构。可以放宽范围：说“清除筛选”或换一个地区。",
        "en": "There are no organisations for “{query}”{filters} in the directory. I can widen it: say “clear filters” or pick another region.",
    },
    "language_set": {
        "pt": "Com certeza, passo a responder em português.",
        "zh": "好的，接下来我用中文回复您。",
        "en": "Sure, I'll reply in English from now on.",
    },
    "human_without_team": {
        "pt": "A equipa da CPC Alliance pode ajudar pessoalmente: faça uma pesquisa e diga «tenho interesse» num resultado (ou depois de uma pesquisa sem resultados), e deixe o seu contacto.",
        "zh": "CPC联盟工作人员可以为您提供人工帮助：请先搜索，然后对某个结果（或在没有结果时）说“我感兴趣”，并留下联系方式。",
        "en": "The CPC Alliance team can help in person: search, then say “I'm interested” in a result (or after a search with no results) and leave your contact.",
    },
    "status_none": {
        "pt": "Não encontro nenhum pedido seu nesta conversa. Para pedir uma apresentação, diga «tenho interesse» num resultado.",
        "zh": "本次对话中没有您的请求记录。如需对接，请对某个结果说“我感兴趣”。",
        "en": "I find no request of yours in this conversation. To ask for an introduction, say “I'm interested” in a result.",
    },
    "status_lead": {
        "pt": "O seu pedido n.º {lead} está: {status}.",
        "zh": "您的请求（编号 {lead}）状态：{status}。",
        "en": "Your request no. {lead} is: {status}.",
    },
    "status_new": {"pt": "recebido, a aguardar a equipa", "zh": "已收到，等待工作人员处理", "en": "received, waiting for the team"},
    "status_contacted": {"pt": "a equipa já o(a) contactou", "zh": "工作人员已与您联系", "en": "the team has contacted you"},
    "status_introduced": {"pt": "apresentação feita", "zh": "已完成对接介绍", "en": "introduction made"},
    "status_closed": {"pt": "encerrado", "zh": "已关闭", "en": "closed"},
    "faq_unknown": {
        "pt": "Não tenho a resposta a essa pergunta aqui. A equipa da CPC Alliance pode responder: diga «quero falar com uma pessoa».",
        "zh": "这里暂时无法回答这个问题。CPC联盟工作人员可以为您解答：请说“我想和工作人员联系”。",
        "en": "I don't have the answer to that here. The CPC Alliance team can answer it: say “I want to talk to a person”.",
    },
    "team_search": {
        "pt": "organizações que a equipa procure para «{query}»",
        "zh": "由工作人员为“{query}”寻找的机构",
        "en": "organisations the team looks for, for “{query}”",
    },
    "filters_cleared": {
        "pt": "Filtros removidos.",
        "zh": "已清除筛选条件。",
        "en": "Filters cleared.",
    },
    "other_language": {
        "pt": "",
        "zh": "",
        "en": "(I answer in English, Portuguese or Chinese; here is English.)",
    },
    "truncated": {
        "pt": "(A sua mensagem é longa: pesquisei com os primeiros {n} caracteres do que procura.)",
        "zh": "（您的消息较长，我只用所需内容的前{n}个字符进行了搜索。）",
        "en": "(Your message is long: I searched with the first {n} characters of what you are looking for.)",
    },
}

LABELS: dict[str, dict[str, str]] = {
    "cluster": {"pt": "cluster", "zh": "产业集群", "en": "cluster"},
    "company": {"pt": "empresa", "zh": "企业", "en": "company"},
    "institution": {"pt": "instituição", "zh": "机构", "en": "institution"},
    "website": {"pt": "Site", "zh": "网站", "en": "Website"},
    "sectors": {"pt": "Setores", "zh": "领域", "en": "Sectors"},
    "offers": {"pt": "Oferece", "zh": "可提供", "en": "Offers"},
    "seeks": {"pt": "Procura", "zh": "寻求", "en": "Seeks"},
    "sources": {"pt": "Fontes", "zh": "来源", "en": "Sources"},
    "only": {"pt": "só", "zh": "仅限", "en": "only"},
    "not": {"pt": "sem", "zh": "不含", "en": "not"},
}

SUGGESTIONS: dict[str, dict[str, list[str]]] = {
    "results": {
        "pt": ["mais", "detalhes do 1", "tenho interesse no 1", "Avisar-me de novos"],
        "zh": ["更多", "第1个的详细信息", "我对第1个感兴趣", "有新的通知我"],
        "en": ["more", "details of 1", "I'm interested in 1", "Tell me when new ones fit"],
    },
    "clarify": {
        "pt": ["nova pesquisa", "afinar a lista"],
        "zh": ["重新搜索", "缩小范围"],
        "en": ["new search", "narrow the list"],
    },
    "details": {
        "pt": ["tenho interesse", "mais", "voltar à lista"],
        "zh": ["我感兴趣", "更多", "返回列表"],
        "en": ["I'm interested", "more", "back to the list"],
    },
    "start": {
        "pt": ["fabricantes de moldes na China", "clusters de calçado na China", "parceiros chineses para baterias"],
        "zh": ["葡萄牙的软木合作伙伴", "葡萄牙的模具企业", "葡萄牙葡萄酒产业集群"],
        "en": ["Portuguese cork companies", "Chinese mould clusters", "Portuguese aerospace cluster"],
    },
    "broaden": {
        "pt": ["limpar filtros", "clusters em Portugal", "clusters na China"],
        "zh": ["清除筛选", "葡萄牙的产业集群", "中国的产业集群"],
        "en": ["clear filters", "clusters in Portugal", "clusters in China"],
    },
}


def say(key: str, lang: str, **values: object) -> str:
    table = MESSAGES[key]
    return table.get(lang, table["en"]).format(**values)


def label(key: str, lang: str) -> str:
    return LABELS[key].get(lang, LABELS[key]["en"])


def suggestions(key: str, lang: str) -> list[str]:
    return list(SUGGESTIONS[key].get(lang, SUGGESTIONS[key]["en"]))


# -- words a reader gets in another language --------------------------------------------------------
# What nobody translated (a record's description, a member's own words, a reason staff wrote) is
# shown as written, marked as the original with its language, in the reader's.
ORIGINAL_IN = {"pt": "(Descrição original, em {language}:)", "zh": "（原文为{language}：）", "en": "(Original description, in {language}:)"}
ORIGINAL_MARK = {"pt": "(original, em {language})", "zh": "（原文，{language}）", "en": "(original, in {language})"}
LANGUAGE_NAMES = {
    "pt": {"pt": "português", "zh": "chinês", "en": "inglês"},
    "zh": {"pt": "葡萄牙语", "zh": "中文", "en": "英语"},
    "en": {"pt": "Portuguese", "zh": "Chinese", "en": "English"},
}


def original_mark(text_lang: str | None, lang: str) -> str:
    """" (original, in Chinese)" / "（原文，英语）" for a text in ``text_lang`` read by a reader of ``lang``; "" when they agree."""
    lang = lang if lang in ORIGINAL_MARK else "en"
    if not text_lang or text_lang == lang:
        return ""
    return ("" if lang == "zh" else " ") + ORIGINAL_MARK[lang].format(language=LANGUAGE_NAMES[lang].get(text_lang, text_lang))


def as_written(text: str, lang: str) -> str:
    """Free text someone else wrote (a rejection's reason), for a reader of ``lang``: as it is when
    it is in their language (or its language cannot be told), else followed by the original mark."""
    from corpus import detect_lang

    written = detect_lang(text, default=None)
    return text + original_mark(written, lang) if written in ("pt", "zh", "en") else text
