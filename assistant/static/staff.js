// Staff console: search with filters, open records, export, the query log and the leads.
// The staff key is kept in sessionStorage (gone when the tab closes) and sent as a Bearer token.
(() => {
  "use strict";
  // A contact is shown as a mailto: link built from its two encoded halves, so nothing in it can
  // add headers (?cc=, &subject=) to the message staff's mail client opens.
  const mailto = (address) => {
    const at = address.lastIndexOf("@");
    return `mailto:${encodeURIComponent(address.slice(0, at))}@${encodeURIComponent(address.slice(at + 1))}`;
  };


  // Every string the console shows, per interface language. Values sent to the API (status codes,
  // filter values, export formats) never come from here.
  const UI = {
    pt: {
      title: "Consola da equipa · Localizador de parceiros CPC Alliance", console: "Consola da equipa",
      tagline: "Localizador de parceiros CPC Alliance", skip: "Saltar para a consola", langLabel: "Idioma da interface",
      openChat: "Abrir o chat", openMap: "Mapa de oportunidades", openPosts: "Oportunidades publicadas", openModeration: "Fila de moderação", moderationCount: "{n} à espera de revisão", signIn: "Iniciar sessão", signOut: "Terminar sessão", staffKey: "Chave da equipa",
      keyDisabled: "O acesso da equipa está desativado neste servidor: defina CPC_ADMIN_TOKEN e reinicie-o.",
      keyWrong: "Essa chave não está correta. Verifique-a e tente de novo.",
      keyNeeded: "Introduza a chave da equipa para iniciar sessão.",
      unreachable: "Não foi possível contactar o servidor. Verifique a ligação e tente de novo.",
      loadFailed: "Não foi possível carregar a consola: {detail}",
      searchTitle: "Pesquisar parceiros", query: "Pesquisa (pt, zh ou en)", placeholder: "p. ex. cortiça, 模具, moulds",
      country: "País", region: "Região", kind: "Tipo", sector: "Setor", any: "Qualquer", perPage: "Por página",
      search: "Pesquisar", searching: "A pesquisar…", searchFailed: "A pesquisa falhou: {detail}",
      summary: "{total} organizações correspondem a «{query}» (idioma da pesquisa: {lang}); a mostrar {from}–{to}.",
      summaryOne: "1 organização corresponde a «{query}» (idioma da pesquisa: {lang}); a mostrar {from}–{to}.",
      lessCloseShown: "{n} menos próximas, marcadas como tal (não correspondem).",
      lessCloseRow: "Menos próximo: não é uma correspondência.",
      noMatch: "Nenhuma organização corresponde a «{query}» com estes filtros.",
      results: "Resultados da pesquisa", colRank: "N.º", colOrganisation: "Organização", colKind: "Tipo",
      colWhere: "País / região", colSectors: "Setores", colScore: "Pontuação", colWhy: "Porque corresponde", actions: "Ações",
      whySectors: "Setores: ", whyTerms: "Termos: ", whyBoosts: "Reforços: ",
      meaningOnly: "Só pelo significado (sem palavras-chave nem setores em comum)",
      boosts: { country: "país", kind: "tipo", place: "local" },
      open: "Abrir", openNamed: "Abrir {name}", openFailed: "Não foi possível abrir {id}: {detail}",
      prev: "Página anterior", next: "Página seguinte", exportCsv: "Exportar CSV", exportJson: "Exportar JSON",
      exportFailed: "A exportação falhou: {detail}",
      record: "Organização", close: "Fechar",
      facts: { id: "Identificador", kind: "Tipo", where: "Localização", sectors: "Setores", website: "Site", offers: "Oferece",
        seeks: "Procura", sources: "Fontes", updated: "Atualizado em" },
      logTitle: "Registo de pesquisas", refresh: "Atualizar", zeroOnly: "Só as pesquisas sem resultados",
      logFailed: "Não foi possível carregar o registo de pesquisas: {detail}",
      recent: "Pesquisas recentes", colTime: "Data e hora", colChannel: "Canal", colLanguage: "Idioma", colQuery: "Pesquisa",
      colResults: "Resultados", byLang: "Pesquisas por idioma", byChannel: "Pesquisas por canal",
      zeroTitle: "Pesquisas sem resultados", zeroRate: "Taxa de pesquisas sem resultados: {rate}", rate: "{pct}% ({zero} de {all})",
      noQueriesChart: "Ainda sem pesquisas", noneYet: "nenhuma ainda",
      noEmpty: "Nenhuma pesquisa ficou sem resultados.", noQueries: "Ainda não há pesquisas registadas.",
      leadsTitle: "Pedidos de contacto recebidos pelo assistente", leads: "Pedidos de contacto", status: "Estado", all: "Todos",
      status_new: "Novo", status_contacted: "Contactado", colNumber: "N.º", colReceived: "Recebido em",
      colLangChannel: "Idioma / canal", colMessage: "Mensagem",
      markContacted: "Marcar como contactado", markNew: "Marcar como novo",
      markContactedLabel: "Marcar o pedido {id} ({name}) como contactado", markNewLabel: "Marcar o pedido {id} ({name}) como novo",
      noLeads: "Ainda não há pedidos de contacto.", leadsFailed: "Não foi possível carregar os pedidos de contacto: {detail}",
      leadFailed: "Não foi possível atualizar o pedido {id}: {detail}",
      sep: ", ", whySep: "; ", chartLabel: "{title}: {counts}", langs: { pt: "Português", zh: "Chinês", en: "Inglês" },
      channels: { web: "Chat web", telegram: "Telegram", wechat: "WeChat", api: "API", staff: "Equipa" },
    },
    zh: {
      title: "工作人员控制台 · CPC联盟合作伙伴搜索", console: "工作人员控制台",
      tagline: "CPC联盟合作伙伴搜索", skip: "跳到控制台", langLabel: "界面语言",
      openChat: "打开聊天页面", openMap: "合作机会图", openPosts: "合作机会发布", openModeration: "审核队列", moderationCount: "{n}项待审核", signIn: "登录", signOut: "退出登录", staffKey: "工作人员密钥",
      keyDisabled: "此服务器未开放工作人员访问：请设置 CPC_ADMIN_TOKEN 后重启服务器。",
      keyWrong: "密钥不正确，请检查后重试。",
      keyNeeded: "请输入工作人员密钥登录。",
      unreachable: "无法连接服务器。请检查网络后重试。",
      loadFailed: "无法加载控制台：{detail}",
      searchTitle: "搜索合作伙伴", query: "查询内容（葡萄牙语、中文或英语）", placeholder: "例如：软木、moldes、moulds",
      country: "国家", region: "地区", kind: "类型", sector: "行业", any: "不限", perPage: "每页条数",
      search: "搜索", searching: "正在搜索…", searchFailed: "搜索失败：{detail}",
      summary: "共有 {total} 个机构与“{query}”匹配（查询语言：{lang}），当前显示第 {from}–{to} 个。",
      summaryOne: "共有 1 个机构与“{query}”匹配（查询语言：{lang}），当前显示第 {from}–{to} 个。",
      lessCloseShown: "另有 {n} 个相关度较低的结果（已标明，并非匹配）。",
      lessCloseRow: "相关度较低，并非匹配结果。",
      noMatch: "在当前筛选条件下，没有与“{query}”匹配的机构。",
      results: "搜索结果", colRank: "序号", colOrganisation: "机构", colKind: "类型",
      colWhere: "国家 / 地区", colSectors: "行业", colScore: "得分", colWhy: "匹配原因", actions: "操作",
      whySectors: "行业：", whyTerms: "关键词：", whyBoosts: "加权：",
      meaningOnly: "仅语义相近（无共同关键词或行业）",
      boosts: { country: "国家", kind: "类型", place: "地点" },
      open: "查看", openNamed: "查看 {name}", openFailed: "无法打开 {id}：{detail}",
      prev: "上一页", next: "下一页", exportCsv: "导出 CSV", exportJson: "导出 JSON",
      exportFailed: "导出失败：{detail}",
      record: "机构", close: "关闭",
      facts: { id: "ID", kind: "类型", where: "所在地", sectors: "行业", website: "网站", offers: "可提供",
        seeks: "寻求", sources: "来源", updated: "更新日期" },
      logTitle: "查询日志", refresh: "刷新", zeroOnly: "仅显示无结果的查询",
      logFailed: "无法加载查询日志：{detail}",
      recent: "最近的查询", colTime: "时间", colChannel: "渠道", colLanguage: "语言", colQuery: "查询内容",
      colResults: "结果数", byLang: "各语言查询数", byChannel: "各渠道查询数",
      zeroTitle: "无结果的查询", zeroRate: "无结果查询占比：{rate}", rate: "{pct}%（{zero}/{all} 次）",
      noQueriesChart: "暂无查询", noneYet: "暂无",
      noEmpty: "没有无结果的查询。", noQueries: "暂无查询记录。",
      leadsTitle: "助手收到的合作意向", leads: "合作意向", status: "状态", all: "全部",
      status_new: "待联系", status_contacted: "已联系", colNumber: "编号", colReceived: "收到时间",
      colLangChannel: "语言 / 渠道", colMessage: "留言",
      markContacted: "标记为已联系", markNew: "标记为待联系",
      markContactedLabel: "将第 {id} 条意向（{name}）标记为已联系", markNewLabel: "将第 {id} 条意向（{name}）标记为待联系",
      noLeads: "暂无合作意向。", leadsFailed: "无法加载合作意向：{detail}",
      leadFailed: "无法更新第 {id} 条意向：{detail}",
      sep: "、", whySep: "；", chartLabel: "{title}：{counts}", langs: { pt: "葡萄牙语", zh: "中文", en: "英语" },
      channels: { web: "网页聊天", telegram: "Telegram", wechat: "微信", api: "API", staff: "工作人员" },
    },
    en: {
      title: "Staff console · CPC Alliance partner finder", console: "Staff console",
      tagline: "CPC Alliance partner finder", skip: "Skip to the console", langLabel: "Interface language",
      openChat: "Open the chat", openMap: "Opportunity map", openPosts: "Opportunity posts", openModeration: "Moderation queue", moderationCount: "{n} waiting for review", signIn: "Sign in", signOut: "Sign out", staffKey: "Staff key",
      keyDisabled: "Staff access is turned off on this server: set CPC_ADMIN_TOKEN and restart it.",
      keyWrong: "That staff key is not right. Check it and try again.",
      keyNeeded: "Enter the staff key to sign in.",
      unreachable: "Could not reach the server. Check the connection and try again.",
      loadFailed: "Could not load the console: {detail}",
      searchTitle: "Search partners", query: "Query (pt, zh or en)", placeholder: "e.g. cork, 模具, moldes",
      country: "Country", region: "Region", kind: "Kind", sector: "Sector", any: "Any", perPage: "Per page",
      search: "Search", searching: "Searching…", searchFailed: "The search failed: {detail}",
      summary: "{total} organisations match “{query}” (query language: {lang}); showing {from}–{to}.",
      summaryOne: "1 organisation matches “{query}” (query language: {lang}); showing {from}–{to}.",
      lessCloseShown: "{n} less close, marked as such (not matches).",
      lessCloseRow: "Less close: not a match.",
      noMatch: "Nothing matches “{query}” with these filters.",
      results: "Search results", colRank: "#", colOrganisation: "Organisation", colKind: "Kind",
      colWhere: "Country / region", colSectors: "Sectors", colScore: "Score", colWhy: "Why it matched", actions: "Actions",
      whySectors: "Sectors: ", whyTerms: "Terms: ", whyBoosts: "Boosts: ",
      meaningOnly: "Meaning only (no shared keyword or sector)",
      boosts: { country: "country", kind: "kind", place: "place" },
      open: "Open", openNamed: "Open {name}", openFailed: "Could not open {id}: {detail}",
      prev: "Previous page", next: "Next page", exportCsv: "Export CSV", exportJson: "Export JSON",
      exportFailed: "The export failed: {detail}",
      record: "Organisation", close: "Close",
      facts: { id: "Id", kind: "Kind", where: "Where", sectors: "Sectors", website: "Website", offers: "Offers",
        seeks: "Seeks", sources: "Sources", updated: "Updated" },
      logTitle: "Query log", refresh: "Refresh", zeroOnly: "Only queries that found nothing",
      logFailed: "Could not load the query log: {detail}",
      recent: "Recent queries", colTime: "Time", colChannel: "Channel", colLanguage: "Language", colQuery: "Query",
      colResults: "Results", byLang: "Queries by language", byChannel: "Queries by channel",
      zeroTitle: "Queries that found nothing", zeroRate: "Zero-result rate: {rate}", rate: "{pct}% ({zero} of {all})",
      noQueriesChart: "No queries yet", noneYet: "none yet",
      noEmpty: "No query has come back empty.", noQueries: "No queries logged yet.",
      leadsTitle: "Leads from the assistant", leads: "Leads", status: "Status", all: "All",
      status_new: "New", status_contacted: "Contacted", colNumber: "No.", colReceived: "Received",
      colLangChannel: "Language / channel", colMessage: "Message",
      markContacted: "Mark contacted", markNew: "Mark as new",
      markContactedLabel: "Mark lead {id} ({name}) as contacted", markNewLabel: "Mark lead {id} ({name}) as new",
      noLeads: "No leads yet.", leadsFailed: "Could not load the leads: {detail}",
      leadFailed: "Could not update lead {id}: {detail}",
      sep: ", ", whySep: "; ", chartLabel: "{title}: {counts}", langs: { pt: "Portuguese", zh: "Chinese", en: "English" },
      channels: { web: "Web chat", telegram: "Telegram", wechat: "WeChat", api: "API", staff: "Staff" },
    },
  };

  // The lead inbox's strings, merged into UI above.
  const LEAD_UI = {
    pt: {
      status_introduced: "Apresentado", status_closed: "Fechado", ch_web: "Chat web", ch_wechat: "WeChat",
      lang_pt: "Português", lang_zh: "Chinês", lang_en: "Inglês", assignee: "Responsável", apply: "Aplicar",
      leadSearch: "Nome, organização, contacto ou necessidade", leadCount: "{n} pedido(s)",
      leadTitle: "Pedido n.º {id}", received: "Recebido {when}", updatedAt: "atualizado {when}",
      asker: "Quem pede", contactLabel: "Contacto", need: "Necessidade", interestIn: "Organizações de interesse",
      outcome: "Resultado", conversation: "Conversa partilhada pelo utilizador ({n} mensagens)", notes: "Notas",
      sent: "Enviado pela equipa", noAssignee: "sem responsável",
      kinds: { email: "e-mail", phone: "telefone", wechat_id: "ID WeChat", telegram: "chat do Telegram", wechat: "chat do WeChat" },
      outcomes: { partnership: "Parceria", in_contact: "Em contacto direto", declined: "Recusado", no_response: "Sem resposta",
        not_a_fit: "Não adequado", withdrawn: "Desistiu", spam: "Spam" },
      markIntroduced: "Marcar como apresentado", markIntroducedLabel: "Marcar o pedido {id} ({name}) como apresentado",
      followUp: "Seguimento", save: "Guardar", addNote: "Acrescentar nota", note: "Nota",
      replyTitle: "Responder ao utilizador", replyText: "Mensagem",
      replyHint: { web: "Aparece no chat web quando o utilizador voltar.", telegram: "Vai para o chat do utilizador no Telegram.",
        wechat: "Mensagem de apoio ao cliente do WeChat: só até 48 h depois da última mensagem do utilizador." },
      sendReply: "Enviar resposta", replyDone: "Resposta enviada ao pedido {id}.",
      introTitle: "Apresentar por e-mail", partnerEmail: "E-mail do parceiro", partnerName: "Nome do parceiro", introText: "Texto da apresentação",
      sendIntro: "Enviar apresentação", introDone: "Apresentação enviada para o pedido {id}.",
      introNoEmail: "O utilizador não deu e-mail: responda no canal dele.",
      delivery: { sent: "entregue", waiting: "à espera que o utilizador volte", shown: "vista no chat", "e-mail": "e-mail" },
      leadUpdated: "Pedido {id} atualizado.",
      windowClosed: "A janela de 48 h do WeChat terminou (última mensagem do utilizador: {when}). Só é possível responder depois de ele voltar a escrever.",
    },
    zh: {
      status_introduced: "已引荐", status_closed: "已结束", ch_web: "网页聊天", ch_wechat: "微信",
      lang_pt: "葡萄牙语", lang_zh: "中文", lang_en: "英语", assignee: "负责人", apply: "应用",
      leadSearch: "姓名、单位、联系方式或需求", leadCount: "共 {n} 条",
      leadTitle: "第 {id} 条意向", received: "收到于 {when}", updatedAt: "更新于 {when}",
      asker: "申请人", contactLabel: "联系方式", need: "需求", interestIn: "意向机构",
      outcome: "结果", conversation: "用户同意分享的对话（{n} 条）", notes: "备注",
      sent: "工作人员已发送", noAssignee: "未分配",
      kinds: { email: "邮箱", phone: "电话", wechat_id: "微信号", telegram: "Telegram 对话", wechat: "微信对话" },
      outcomes: { partnership: "达成合作", in_contact: "双方已直接联系", declined: "被拒绝", no_response: "无回复",
        not_a_fit: "不匹配", withdrawn: "用户撤回", spam: "垃圾信息" },
      markIntroduced: "标记为已引荐", markIntroducedLabel: "将第 {id} 条意向（{name}）标记为已引荐",
      followUp: "跟进", save: "保存", addNote: "添加备注", note: "备注",
      replyTitle: "回复用户", replyText: "消息内容",
      replyHint: { web: "用户下次打开网页聊天时显示。", telegram: "发送到用户的 Telegram 对话。",
        wechat: "微信客服消息：仅限用户最后一条消息后的 48 小时内。" },
      sendReply: "发送回复", replyDone: "已回复第 {id} 条意向。",
      introTitle: "通过邮件引荐", partnerEmail: "合作方邮箱", partnerName: "合作方名称", introText: "引荐内容",
      sendIntro: "发送引荐邮件", introDone: "第 {id} 条意向的引荐邮件已发送。",
      introNoEmail: "用户未留邮箱：请在其渠道回复。",
      delivery: { sent: "已送达", waiting: "等待用户返回", shown: "用户已看到", "e-mail": "邮件" },
      leadUpdated: "第 {id} 条意向已更新。",
      windowClosed: "微信48小时回复窗口已过（用户最后一条消息：{when}）。用户再次发消息后才能回复。",
    },
    en: {
      status_introduced: "Introduced", status_closed: "Closed", ch_web: "Web chat", ch_wechat: "WeChat",
      lang_pt: "Portuguese", lang_zh: "Chinese", lang_en: "English", assignee: "Assignee", apply: "Apply",
      leadSearch: "Name, organisation, contact or need", leadCount: "{n} lead(s)",
      leadTitle: "Lead no. {id}", received: "Received {when}", updatedAt: "updated {when}",
      asker: "Asker", contactLabel: "Contact", need: "Need", interestIn: "Organisations of interest",
      outcome: "Outcome", conversation: "Conversation shared by the user ({n} messages)", notes: "Notes",
      sent: "Sent by staff", noAssignee: "unassigned",
      kinds: { email: "e-mail", phone: "phone", wechat_id: "WeChat ID", telegram: "Telegram chat", wechat: "WeChat chat" },
      outcomes: { partnership: "Partnership", in_contact: "In direct contact", declined: "Declined", no_response: "No response",
        not_a_fit: "Not a fit", withdrawn: "Withdrawn", spam: "Spam" },
      markIntroduced: "Mark introduced", markIntroducedLabel: "Mark lead {id} ({name}) as introduced",
      followUp: "Follow up", save: "Save", addNote: "Add note", note: "Note",
      replyTitle: "Reply to the user", replyText: "Message",
      replyHint: { web: "Shown in the web chat when the user comes back.", telegram: "Goes to the user's Telegram chat.",
        wechat: "WeChat customer-service message: only within 48 hours of the user's last message." },
      sendReply: "Send reply", replyDone: "Reply sent for lead {id}.",
      introTitle: "Introduce by e-mail", partnerEmail: "Partner e-mail", partnerName: "Partner name", introText: "Introduction",
      sendIntro: "Send introduction", introDone: "Introduction sent for lead {id}.",
      introNoEmail: "The user gave no e-mail: reply on their channel.",
      delivery: { sent: "delivered", waiting: "waiting for the user to return", shown: "seen in the chat", "e-mail": "e-mail" },
      leadUpdated: "Lead {id} updated.",
      windowClosed: "WeChat's 48-hour window has passed (the user last wrote {when}). A reply is possible only after they write again.",
    },
  };
  for (const lang of Object.keys(UI)) Object.assign(UI[lang], LEAD_UI[lang]);

  // Threads, the FAQ and API errors by code (the API's English message stays as the detail).
  const TEAM_UI = {
    pt: {
      thread: "Conversa com o utilizador ({n} mensagens)", userReplied: "O utilizador respondeu ({n})", fromUser: "Utilizador",
      fromStaff: "Equipa", read: "lida", unread: "nova",
      faqTitle: "Perguntas e respostas (FAQ)", faqHint: "Respondidas no chat quando um utilizador pergunta o mesmo por outras palavras. Uma pergunta por linha.",
      faqAdd: "Acrescentar uma entrada", faqUnanswered: "Perguntas que a FAQ não soube responder",
      faqQuestions: "Perguntas ({lang})", faqAnswer: "Resposta ({lang})", faqSave: "Guardar", faqCreate: "Acrescentar",
      faqDelete: "Apagar", faqSaved: "Entrada {id} guardada.", faqDeleted: "Entrada {id} apagada.", faqFailed: "A FAQ não foi guardada: {detail}",
      faqMissing: "Sem resposta em: {langs}", faqCount: "{n} entrada(s)", faqNone: "Ainda não há entradas.", unansweredNone: "Nenhuma por agora.",
      dismiss: "Dispensar", untranslated: "Sem tradução (mostrado no original): {fields}",
      fieldNames: { description: "descrição", offers: "oferece", seeks: "procura" }, machineTranslated: "Tradução automática",
      errors: { invalid: "Dados inválidos", not_found: "Não encontrado", faq_not_found: "Esta entrada já não existe",
        question_not_found: "Esta pergunta já não existe", conflict: "Não é possível agora", bad_gateway: "O canal não aceitou a mensagem",
        unavailable: "O serviço está a iniciar; tente daqui a pouco", too_large: "Pedido demasiado grande", rate_limited: "Demasiados pedidos; aguarde",
        disk_full: "O disco está cheio: nada foi guardado", no_email: "O utilizador não deu e-mail", mail_off: "O envio de e-mails está desligado neste servidor",
        wechat_window: "A janela de 48 h do WeChat terminou", not_configured: "Este canal não está configurado no servidor", error: "Erro" },
    },
    zh: {
      thread: "与用户的对话（{n} 条消息）", userReplied: "用户已回复（{n}）", fromUser: "用户", fromStaff: "工作人员", read: "已读", unread: "新",
      faqTitle: "常见问题（FAQ）", faqHint: "用户换一种说法问同样的问题时，聊天中会自动回答。每行一个问题。",
      faqAdd: "新增条目", faqUnanswered: "FAQ 未能回答的问题",
      faqQuestions: "问题（{lang}）", faqAnswer: "回答（{lang}）", faqSave: "保存", faqCreate: "新增",
      faqDelete: "删除", faqSaved: "条目 {id} 已保存。", faqDeleted: "条目 {id} 已删除。", faqFailed: "FAQ 未保存：{detail}",
      faqMissing: "缺少回答的语言：{langs}", faqCount: "共 {n} 条", faqNone: "暂无条目。", unansweredNone: "暂无。",
      dismiss: "忽略", untranslated: "缺少翻译（以原文显示）：{fields}",
      fieldNames: { description: "简介", offers: "可提供", seeks: "寻求" }, machineTranslated: "机器翻译",
      errors: { invalid: "数据无效", not_found: "未找到", faq_not_found: "该条目已不存在", question_not_found: "该问题已不存在",
        conflict: "目前无法执行", bad_gateway: "渠道未接受该消息", unavailable: "服务正在启动，请稍后再试", too_large: "请求过大",
        rate_limited: "请求过于频繁，请稍候", disk_full: "磁盘已满，未保存任何内容", no_email: "用户未留邮箱", mail_off: "本服务器未开启邮件发送",
        wechat_window: "微信48小时回复窗口已过", not_configured: "服务器未配置该渠道", error: "错误" },
    },
    en: {
      thread: "Conversation with the user ({n} messages)", userReplied: "User replied ({n})", fromUser: "User", fromStaff: "Team",
      read: "read", unread: "new",
      faqTitle: "Questions and answers (FAQ)", faqHint: "Answered in the chat when a user asks the same thing in other words. One question per line.",
      faqAdd: "Add an entry", faqUnanswered: "Questions the FAQ could not answer",
      faqQuestions: "Questions ({lang})", faqAnswer: "Answer ({lang})", faqSave: "Save", faqCreate: "Add",
      faqDelete: "Delete", faqSaved: "Entry {id} saved.", faqDeleted: "Entry {id} deleted.", faqFailed: "The FAQ was not saved: {detail}",
      faqMissing: "No answer in: {langs}", faqCount: "{n} entr(y/ies)", faqNone: "No entries yet.", unansweredNone: "None for now.",
      dismiss: "Dismiss", untranslated: "No translation (shown in the original): {fields}",
      fieldNames: { description: "description", offers: "offers", seeks: "seeks" }, machineTranslated: "Machine translation",
      errors: { invalid: "Invalid data", not_found: "Not found", faq_not_found: "This entry no longer exists",
        question_not_found: "This question no longer exists", conflict: "Not possible now", bad_gateway: "The channel did not accept the message",
        unavailable: "The service is starting; try again shortly", too_large: "Request too large", rate_limited: "Too many requests; please wait",
        disk_full: "The disk is full: nothing was saved", no_email: "The user gave no e-mail", mail_off: "E-mail sending is off on this server",
        wechat_window: "WeChat's 48-hour window has passed", not_configured: "This channel is not configured on the server", error: "Error" },
    },
  };
  for (const lang of Object.keys(UI)) Object.assign(UI[lang], TEAM_UI[lang]);
  const LOCALES = { pt: "pt-PT", zh: "zh-CN", en: "en-GB" };

  const KEY = "cpc.staff.key";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let key = sessionStorage.getItem(KEY);
  let facets = null;
  let search = null;  // {body, pages}: the search on screen (what pager and exports use), its pages by offset
  let shownLog = null;  // {stats, rows, zero}: the query log on screen, redrawn when the language changes
  let shownLeads = null;  // the leads on screen
  let shownFaq = null;  // {entries, unanswered}: the FAQ on screen
  const messages = {};  // element id -> [key, values] of the message it shows, said again in a new language

  class SignedOut extends Error {}

  const el = window.cpcEl;  // from dom.js, shared with the other page
  const ui = window.cpcI18n(UI, "cpc.staff.lang", () => render());
  const t = ui.t;
  // a code (language, channel, boost) by its name in the interface language, else as it is
  const named = (group, code) => t(group)[code] || code;

  // Dates in the browser's own variant of the interface language (en-US stays en-US), else a default one.
  const locale = () => (navigator.languages || []).find((tag) => String(tag).toLowerCase().split("-")[0] === ui.lang)
    || LOCALES[ui.lang];

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Shows message `key` (or nothing) in element `id`; error boxes are hidden while empty.
  function say(id, key, values) {
    messages[id] = key ? [key, values] : null;
    const node = $(id);
    node.textContent = key ? [].concat(key).map((k) => t(k, values)).join(" ") : "";  // one key or several sentences
    if (node.classList.contains("error")) node.hidden = !key;
  }

  const when = (unix) => new Date(unix * 1000).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" });
  const label = (group, value) => window.cpcFacetLabel(facets, group, value, ui.lang);

  function render() {
    ui.apply();
    for (const [id, message] of Object.entries(messages)) if (message) say(id, ...message);
    if (facets) fillFacets();
    if (search && search.pages.has(search.body.offset)) renderResults(search.pages.get(search.body.offset));
    if (shownLog) renderLog();
    if (shownLeads) renderLeads();
    if (shownFaq) renderFaq();
  }

  // -- talking to the API ---------------------------------------------------------------------
  // -- named accounts (staff-login.js): without a key, the session cookie and its CSRF header --
  const session = window.cpcStaffSession;
  const credentials = (method) => (key ? { Authorization: `Bearer ${key}` } : session.headers(method));

  async function api(path, options = {}) {
    const sent = key;
    const headers = { Accept: "application/json", ...(options.headers || {}), ...credentials(options.method) };
    const res = await fetch(path, { ...options, headers });
    if (sent !== key && (res.status === 401 || res.status === 403)) throw new SignedOut();  // refused a key since replaced
    if (!key && res.status === 403) {  // signed in, but this needs another role (or the CSRF token): say so, stay in
      const body = await res.json().catch(() => null);
      throw new Error((body && body.error) || `HTTP ${res.status}`);
    }
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => null);
      signOut(key ? keyProblem(res.status, body) : null);
      if (!key) session.ended();
      throw new SignedOut();
    }
    return res;
  }

  // An API error in the console's language: the code the API gives (else one from the HTTP status),
  // then the field or value it names; the English message only when no code is known.
  const STATUS_CODES = { 400: "invalid", 404: "not_found", 409: "conflict", 413: "too_large", 422: "invalid", 429: "rate_limited",
    502: "bad_gateway", 503: "unavailable", 507: "disk_full" };
  function apiError(status, body) {
    const detail = body && body.detail && typeof body.detail === "object" && !Array.isArray(body.detail) ? body.detail : {};
    const code = (body && body.code) || detail.code || STATUS_CODES[status];
    const words = t("errors")[code];
    if (!words) return new Error((body && body.error) || `HTTP ${status}`);
    const field = body && Array.isArray(body.detail) && body.detail[0] && body.detail[0].field;
    return new Error(field ? `${words} (${field})` : words);
  }

  async function json(path, options) {
    const res = await api(path, options);
    if (res.status === 204) return null;
    const body = await res.json().catch(() => null);
    if (!res.ok) throw apiError(res.status, body);
    return body;
  }

  function keyProblem(status, body) {
    const error = (body && body.error) || "";
    if (status === 403 && error.includes("disabled")) return "keyDisabled";
    if (status === 403) return "keyWrong";
    return "keyNeeded";
  }

  async function download(path, options) {
    const res = await api(path, options);
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw apiError(res.status, body);
    }
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "export";
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // -- signing in and out ---------------------------------------------------------------------
  function showConsole(on) {
    $("signin").hidden = on;
    $("console").hidden = !on;
    $("sign-out").hidden = !on;
  }

  function signOut(message) {
    const byKey = Boolean(key);
    if (!key) session.logout();
    key = null;
    sessionStorage.removeItem(KEY);
    delete document.body.dataset.loaded;
    showConsole(false);
    say("signin-error", message);
    $("staff-key").value = "";
    $(byKey ? "staff-key" : "staff-name").focus();
  }

  async function signIn(candidate) {
    say("signin-error", null);
    let res;
    try {
      res = await fetch("/api/v1/staff/stats", { headers: { Authorization: `Bearer ${candidate}`, Accept: "application/json" } });
    } catch (_) {
      say("signin-error", "unreachable");
      return;
    }
    if (!res.ok) {
      say("signin-error", keyProblem(res.status, await res.json().catch(() => null)));
      $("staff-key").select();
      return;
    }
    key = candidate;
    sessionStorage.setItem(KEY, key);
    await start();
    $("q").focus();
  }

  async function start() {
    showConsole(true);
    try {
      await loadFacets();
      await Promise.all([loadLog(), loadLeads(), loadFaq(), loadModerationCount()]);
    } catch (e) {
      if (e instanceof SignedOut) return;
      say("search-error", "loadFailed", { detail: e.message });
    }
    document.body.dataset.loaded = "true";  // its first loads are done and laid out, as on the other staff pages
  }

  // The navigation's pending count: what members sent that waits for review (/staff/moderation).
  async function loadModerationCount() {
    const badge = $("moderation-count");
    try {
      const { total } = await json("/api/v1/staff/moderation/count");
      badge.textContent = String(total);
      badge.setAttribute("aria-label", t("moderationCount", { n: total }));
      badge.hidden = false;
    } catch (e) {
      if (e instanceof SignedOut) throw e;
      badge.hidden = true;  // a role that may not read the queue: no count
    }
  }

  // -- search ---------------------------------------------------------------------------------
  async function loadFacets() {
    if (facets) return;
    facets = await json("/api/v1/facets");
    fillFacets();
  }

  // The filter menus in the interface language; what is chosen stays chosen.
  function fillFacets() {
    const option = (group, f, text) => el("option", { value: f.value, text: text || label(group, f.value) });
    const fill = (id, options) => {
      const chosen = $(id).value;
      $(id).replaceChildren(el("option", { value: "", "data-i18n": "any", text: t("any") }), ...options);
      $(id).value = chosen;
    };
    const byLabel = (a, b) => label("sectors", a.value).localeCompare(label("sectors", b.value), locale());
    fill("f-country", facets.countries.map((f) => option("countries", f, `${label("countries", f.value)} (${f.value})`)));
    fill("f-kind", facets.kinds.map((f) => option("kinds", f)));
    fill("f-sector", [...facets.sectors].sort(byLabel).map((f) => option("sectors", f)));
    fill("f-region", facets.countries.map((country) => {
      const regions = facets.regions.filter((r) => r.country === country.value);
      return regions.length ? el("optgroup", { label: label("countries", country.value) }, regions.map((r) => option("regions", r))) : null;
    }).filter(Boolean));
  }

  function searchBody(offset) {
    const filters = {};
    for (const [id, field] of [["f-country", "country"], ["f-region", "region"], ["f-kind", "kind"], ["f-sector", "sectors"]]) {
      if ($(id).value) filters[field] = [$(id).value];
    }
    return { query: $("q").value.trim(), filters, limit: Number($("page-size").value), offset };
  }

  // Pages already seen are shown again without asking: going back is not a new query for the log.
  async function runSearch(body) {
    const cached = search && search.pages.get(body.offset);
    if (cached && JSON.stringify({ ...search.body, offset: body.offset }) === JSON.stringify(body)) {
      search.body = body;
      renderResults(cached);
      return;
    }
    say("search-error", null);
    say("search-summary", "searching");
    let data;
    try {
      data = await json("/api/v1/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      if (e instanceof SignedOut) return;
      say("search-summary", null);
      say("search-error", "searchFailed", { detail: e.message });
      return;
    }
    if (body.offset === 0 || !search) search = { body, pages: new Map() };
    search.body = body;
    search.pages.set(body.offset, data);
    renderResults(data);
    if (body.offset === 0) loadLog().catch(() => {});
  }

  function why(w) {
    const parts = [];
    if (w.sectors.length) parts.push(el("span", {}, el("b", { text: t("whySectors") }), w.sectors.join(t("sep"))));
    if (w.terms.length) parts.push(el("span", {}, el("b", { text: t("whyTerms") }), w.terms.join(t("sep"))));
    if (w.boosts.length) parts.push(el("span", {}, el("b", { text: t("whyBoosts") }), w.boosts.map((b) => named("boosts", b)).join(t("sep"))));
    if (!parts.length) parts.push(el("span", { text: t("meaningOnly") }));
    return el("div", { class: "why" }, parts.flatMap((p, i) => (i ? [t("whySep"), p] : [p])));
  }

  function renderResults(data) {
    const from = data.total ? data.offset + 1 : 0;
    const to = data.offset + data.results.length;
    // results past the matches (or instead of them) are labelled less close: the API counts them apart
    const lessClose = data.less_close;
    const matched = data.matches;
    const values = { total: matched, query: data.query, lang: named("langs", data.lang), from, to, n: lessClose };
    const head = matched === 1 ? "summaryOne" : matched ? "summary" : "noMatch";
    say("search-summary", lessClose ? [head, "lessCloseShown"] : head, values);
    const rows = data.results.map((h, i) => el("tr", { "data-id": h.id },
      el("td", { class: "num-cell", text: String(data.offset + i + 1) }),
      el("td", { lang: data.lang }, el("div", { text: h.name }), el("small", { class: "sub", text: h.id })),
      el("td", { text: label("kinds", h.kind) }),
      el("td", { text: [label("countries", h.country), h.region && label("regions", h.region)].filter(Boolean).join(" · ") }),
      el("td", { text: h.sectors.map((s) => label("sectors", s)).join(t("sep")) }),
      el("td", { class: "num-cell", text: h.score.toFixed(3) }),
      el("td", {}, ...(h.less_close ? [el("b", { class: "less-close", text: t("lessCloseRow") })] : []), why(h.why)),
      el("td", {}, el("button", { type: "button", class: "secondary", "aria-label": t("openNamed", { name: h.name }),
        onclick: (e) => openRecord(h.id, e.currentTarget) }, t("open")))));
    $("results").tBodies[0].replaceChildren(...rows);
    $("results").hidden = !rows.length;
    $("pager").hidden = !data.total;
    $("prev").disabled = data.offset === 0;
    $("next").disabled = to >= data.total;
  }

  async function openRecord(id, opener) {
    let rec;
    try {
      rec = await json(`/api/v1/organisations/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!(e instanceof SignedOut)) say("search-error", "openFailed", { id, detail: e.message });
      return;
    }
    $("record-title").textContent = rec.name;
    const link = (url) => el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url });
    const facts = [
      ["id", rec.id], ["kind", label("kinds", rec.kind)],
      ["where", [rec.city, rec.region && label("regions", rec.region), label("countries", rec.country)].filter(Boolean).join(t("sep"))],
      ["sectors", (rec.sectors || []).map((s) => label("sectors", s)).join(t("sep"))],
      ["website", rec.website ? link(rec.website) : "—"],
      ["offers", rec.offers], ["seeks", rec.seeks],
      ["sources", (rec.sources || []).length ? el("ul", {}, rec.sources.map((s) => el("li", {}, link(s)))) : null],
      ["updated", rec.updated],
    ].filter(([, v]) => v);
    const langs = Object.entries(rec.i18n || {});
    $("record-body").replaceChildren(
      el("dl", { class: "record" }, facts.flatMap(([k, v]) => [el("dt", { text: named("facts", k) }), el("dd", {}, v)])),
      el("div", { class: "translations" }, langs.length
        ? langs.map(([lang, tr]) => el("section", {}, el("h3", {}, `${named("langs", lang)}: `, el("span", { lang, text: tr.name || rec.name })),
          el("p", { lang, text: tr.description || "" }),
          tr.offers ? el("p", { lang }, el("b", { text: `${named("facts", "offers")}: ` }), tr.offers) : null,
          tr.seeks ? el("p", { lang }, el("b", { text: `${named("facts", "seeks")}: ` }), tr.seeks) : null,
          (tr.machine || []).length ? el("small", { class: "sub", text: t("machineTranslated") }) : null))
        : el("p", { text: rec.description })),
      (rec.untranslated || []).length ? el("p", { class: "badge unread", "data-untranslated": rec.untranslated.join(" "),
        text: t("untranslated", { fields: rec.untranslated.map((f) => { const [name, lang] = f.split(":");
          return `${named("fieldNames", name)} (${named("langs", lang)})`; }).join(t("sep")) }) }) : null);
    const dialog = $("record");
    dialog.showModal();
    dialog.addEventListener("close", () => opener && opener.focus(), { once: true });
  }

  // -- query log ------------------------------------------------------------------------------
  function barChart(title, counts, names) {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, n]) => [named(names, k), n]);
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const rowH = 26, labelW = 70, barW = 190, height = Math.max(1, entries.length) * rowH + 4;
    const chart = svg("svg", { viewBox: `0 0 300 ${height}`, role: "img",
      "aria-label": t("chartLabel", { title, counts: entries.map(([k, n]) => `${k} ${n}`).join(t("sep")) || t("noneYet") }) });
    if (!entries.length) chart.append(svg("text", { x: 0, y: 18 }, t("noQueriesChart")));
    entries.forEach(([name, n], i) => {
      const y = i * rowH + 4;
      chart.append(
        svg("text", { x: 0, y: y + 15 }, name),
        svg("rect", { class: "track", x: labelW, y, width: barW, height: rowH - 8, rx: 3 }),
        svg("rect", { class: "bar", x: labelW, y, width: Math.max(2, (barW * n) / max), height: rowH - 8, rx: 3 }),
        svg("text", { x: labelW + barW + 6, y: y + 15 }, String(n)));
    });
    return el("figure", { class: "chart" }, el("h3", { text: title }), chart);
  }

  function rateChart(stats) {
    const { all, zero_results: zero } = stats.totals;
    const pct = (Math.round(stats.zero_rate * 1000) / 10).toLocaleString(locale());
    const text = t("rate", { pct, zero, all });
    const chart = svg("svg", { viewBox: "0 0 300 30", role: "img", "aria-label": t("zeroRate", { rate: text }) });
    chart.append(
      svg("rect", { class: "track", x: 0, y: 4, width: 160, height: 18, rx: 3 }),
      svg("rect", { class: "bar zero", x: 0, y: 4, width: Math.max(2, 160 * stats.zero_rate), height: 18, rx: 3 }),
      svg("text", { x: 166, y: 18 }, text));  // room for "100% (1000 of 1000)"
    return el("figure", { class: "chart" }, el("h3", { text: t("zeroTitle") }), chart);
  }

  async function loadLog() {
    const zero = $("zero-only").checked;
    const [stats, rows] = await Promise.all([
      json("/api/v1/staff/stats"),
      json(`/api/v1/staff/queries?limit=50${zero ? "&zero=true" : ""}`),
    ]);
    shownLog = { stats, rows, zero };
    renderLog();
  }

  function renderLog() {
    const { stats, rows, zero } = shownLog;
    $("charts").replaceChildren(barChart(t("byLang"), stats.by_lang, "langs"), barChart(t("byChannel"), stats.by_channel, "channels"),
      rateChart(stats));
    $("queries").tBodies[0].replaceChildren(...(rows.length ? rows.map((q) => el("tr", {},
      el("td", { text: when(q.created) }), el("td", { text: named("channels", q.channel) }), el("td", { text: named("langs", q.lang) }),
      el("td", { lang: q.lang, text: q.query }), el("td", { class: "num-cell", text: String(q.results) })))
      : [el("tr", {}, el("td", { colspan: "5", text: t(zero ? "noEmpty" : "noQueries") }))]));
  }

  // -- leads ----------------------------------------------------------------------------------
  const STATUSES = ["new", "contacted", "introduced", "closed"];
  const openForms = new Set();
  const openThreads = new Set();  // leads whose thread is open: opening one marks the user's answers read

  async function openThread(l) {
    if (!l.unread) return;
    try {
      const fresh = await json(`/api/v1/leads/${l.id}`);  // opening the lead marks its answers read
      shownLeads = shownLeads.map((x) => (x.id === l.id ? { ...fresh, unread: 0 } : x));
      renderLeads();
    } catch (e) {
      if (!(e instanceof SignedOut)) say("leads-error", "leadFailed", { id: l.id, detail: e.message });
    }
  }
  const WECHAT_WINDOW = 48 * 3600;  // seconds after the user's last message that WeChat takes a reply  // leads whose follow-up forms are open: they stay open when the list is redrawn
  const NEXT = { new: "contacted", contacted: "introduced" };
  const leadFilters = () => {
    const params = new URLSearchParams();
    for (const [name, id] of [["status", "lead-status"], ["channel", "lead-channel"], ["lang", "lead-lang"],
      ["assignee", "lead-assignee"], ["q", "lead-q"]]) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    return params;
  };

  let leadsAsked = 0;  // a slower, older answer must not replace the list asked for last

  async function loadLeads(focus) {
    say("leads-error", null);
    const params = leadFilters();
    params.set("limit", "200");
    const asked = ++leadsAsked;
    const found = await json(`/api/v1/leads?${params}`);
    if (asked !== leadsAsked) return;
    shownLeads = found;
    renderLeads();
    if (focus) {
      const target = document.querySelector(focus);
      if (target) target.focus();
    }
  }

  function contactLink(l) {
    if (!l.contact) return "—";
    const kind = named("kinds", l.contact_kind) || l.contact_kind;
    if (l.contact_kind === "email") return el("span", {}, el("a", { href: mailto(l.contact), text: l.contact }), ` (${kind})`);
    if (l.contact_kind === "phone") return el("span", {}, el("a", { href: `tel:${l.contact}`, text: l.contact }), ` (${kind})`);
    if (l.contact_kind === "wechat_id") return `${l.contact} (${kind})`;
    return kind;
  }

  function field(labelKey, control) {
    const id = `${control.id}`;
    return el("div", { class: "field" }, el("label", { for: id, text: t(labelKey) }), control);
  }

  function leadCard(l) {
    const names = { id: l.id, name: l.name || l.org_name };
    const next = NEXT[l.status];
    const facts = [
      ["asker", [l.name, l.asker_org].filter(Boolean).join(" — ") || "—"],
      ["contactLabel", contactLink(l)],
      ["need", l.need || l.message],
      ["interestIn", el("ul", { class: "orgs" }, l.organisations.map((o) => el("li", {}, o.name, " ", el("small", { class: "sub", text: o.id }))))],
      ["assignee", l.assignee || t("noAssignee")],
    ];
    if (l.outcome) facts.push(["outcome", named("outcomes", l.outcome)]);
    const uid = `lead-${l.id}`;
    const statusSelect = el("select", { id: `${uid}-status` }, STATUSES.map((s) => el("option", { value: s, text: t(`status_${s}`) })));
    statusSelect.value = l.status;
    const outcomeSelect = el("select", { id: `${uid}-outcome` }, el("option", { value: "", text: "—" }),
      Object.keys(UI.en.outcomes).map((o) => el("option", { value: o, text: named("outcomes", o) })));
    outcomeSelect.value = l.outcome || "";
    const outcomeField = field("outcome", outcomeSelect);
    outcomeField.hidden = l.status !== "closed";
    statusSelect.addEventListener("change", () => { outcomeField.hidden = statusSelect.value !== "closed"; });
    const assignee = el("input", { id: `${uid}-assignee`, type: "text", maxlength: "80", value: l.assignee || "" });
    const note = el("textarea", { id: `${uid}-note`, rows: "2", maxlength: "2000" });
    const reply = el("textarea", { id: `${uid}-reply`, rows: "3", maxlength: "2000" });
    const partnerEmail = el("input", { id: `${uid}-partner-email`, type: "email", maxlength: "254" });
    const partnerName = el("input", { id: `${uid}-partner-name`, type: "text", maxlength: "200" });
    const introText = el("textarea", { id: `${uid}-intro`, rows: "4", maxlength: "5000" });
    const submit = (handler) => (e) => { e.preventDefault(); handler(); };
    const lastWrote = l.last_inbound || l.created;
    const windowClosed = l.channel === "wechat" && Date.now() / 1000 - lastWrote > WECHAT_WINDOW;
    const forms = el("div", { class: "lead-forms" },
      el("form", { class: "row", onsubmit: submit(() => patchLead(l.id, {
        status: statusSelect.value, ...(statusSelect.value === "closed" && outcomeSelect.value ? { outcome: outcomeSelect.value } : {}),
        assignee: assignee.value.trim() }, `#${uid}-status`)) },
        field("status", statusSelect), outcomeField, field("assignee", assignee), el("button", { type: "submit", text: t("save") })),
      el("form", { class: "stack", onsubmit: submit(() => note.value.trim() && patchLead(l.id, { note: note.value.trim() }, `#${uid}-note`)) },
        field("note", note), el("button", { type: "submit", class: "secondary", text: t("addNote") })),
      el("form", { class: "stack", onsubmit: submit(() => reply.value.trim() && sendReply(l, reply.value.trim())) },
        el("h4", { text: t("replyTitle") }), el("p", { class: "sub", text: (t("replyHint") || {})[l.channel] || "" }),
        windowClosed ? el("p", { class: "error", text: t("windowClosed", { when: when(lastWrote) }) }) : null,
        field("replyText", reply), el("button", { type: "submit", disabled: windowClosed, text: t("sendReply") })),
      l.contact_kind === "email"
        ? el("form", { class: "stack", onsubmit: submit(() => sendIntro(l, partnerEmail.value.trim(), partnerName.value.trim(), introText.value.trim())) },
          el("h4", { text: t("introTitle") }), field("partnerEmail", partnerEmail), field("partnerName", partnerName), field("introText", introText),
          el("button", { type: "submit", class: "secondary", text: t("sendIntro") }))
        : el("p", { class: "sub", text: t("introNoEmail") }));
    return el("li", { class: "lead", "data-lead": String(l.id) },
      el("article", { "aria-labelledby": `${uid}-title` },
        el("header", { class: "lead-head" },
          el("h3", { id: `${uid}-title` }, t("leadTitle", { id: l.id }), l.name ? ` · ${l.name}` : ""),
          el("span", { class: `badge status-${l.status}`, text: t(`status_${l.status}`) || l.status }),
          l.unread ? el("span", { class: "badge unread", "data-unread": String(l.unread), text: t("userReplied", { n: l.unread }) }) : null),
        el("p", { class: "sub" }, [t("received", { when: when(l.created) }), t("updatedAt", { when: when(l.updated) }),
          named("langs", l.lang), named("channels", l.channel)].join(" · ")),
        el("dl", { class: "record lead-facts" }, facts.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { lang: l.lang }, v)])),
        l.conversation && l.conversation.length ? el("details", { class: "conversation-log" },
          el("summary", { text: t("conversation", { n: l.conversation.length }) }),
          el("ol", { lang: l.lang }, l.conversation.map(([at, said, answer]) => el("li", {},
            el("small", { class: "sub", text: when(at) }), " ", el("b", { text: said }), el("div", { class: "sub", text: answer }))))) : null,
        l.notes.length ? el("div", {}, el("h4", { text: t("notes") }), el("ul", { class: "notes" },
          l.notes.map((n) => el("li", {}, el("small", { class: "sub", text: `${when(n.at)}${n.by ? ` · ${n.by}` : ""} ` }), n.text)))) : null,
        (l.messages || []).length ? el("details", { class: "thread", "data-thread": String(l.id), open: openThreads.has(l.id),
          ontoggle: (e) => { if (e.currentTarget.open) { openThreads.add(l.id); openThread(l); } else openThreads.delete(l.id); } },
          el("summary", { text: t("thread", { n: l.messages.length }) }),
          el("ol", { class: "notes sent" }, l.messages.map((m) => el("li", { class: m.sender === "user" ? "from-user" : "from-staff" },
            el("small", { class: "sub", text: `${when(m.created)} · ${m.sender === "user" ? `${t("fromUser")} · ${t(m.delivery)}`
              : `${t("fromStaff")}${m.author ? ` (${m.author})` : ""} · ${named("delivery", m.delivery)}`} ` }),
            el("span", { class: "pre", lang: m.sender === "user" ? l.lang : null, text: m.text }))))) : null,
        el("div", { class: "lead-actions" },
          next ? el("button", { type: "button", class: "primary", "data-lead-action": String(l.id),
            "aria-label": t(`mark${next[0].toUpperCase()}${next.slice(1)}Label`, names),
            onclick: () => patchLead(l.id, { status: next }, `[data-lead="${l.id}"] [data-lead-action]`) },
          t(`mark${next[0].toUpperCase()}${next.slice(1)}`)) : null,
          el("details", { class: "lead-more", open: openForms.has(l.id),
            ontoggle: (e) => (e.currentTarget.open ? openForms.add(l.id) : openForms.delete(l.id)) },
          el("summary", { text: t("followUp") }), forms))));
  }

  function renderLeads() {
    say("leads-status", "leadCount", { n: shownLeads.length });
    $("leads").replaceChildren(...(shownLeads.length ? shownLeads.map(leadCard) : [el("li", { class: "empty", text: t("noLeads") })]));
    document.dispatchEvent(new CustomEvent("cpc:leads-rendered", { detail: shownLeads }));  // markers: staff-inbox.js
  }

  async function patchLead(id, body, focus) {
    try {
      await json(`/api/v1/leads/${id}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      await loadLeads(focus);
      say("leads-status", "leadUpdated", { id });
    } catch (e) {
      if (!(e instanceof SignedOut)) say("leads-error", "leadFailed", { id, detail: e.message });
    }
  }

  async function sendReply(lead, text) {
    try {
      await json(`/api/v1/leads/${lead.id}/reply`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
      await loadLeads(`#lead-${lead.id}-reply`);
      say("leads-status", "replyDone", { id: lead.id });
    } catch (e) {
      if (!(e instanceof SignedOut)) say("leads-error", "leadFailed", { id: lead.id, detail: e.message });
    }
  }

  async function sendIntro(lead, partnerEmail, partnerName, text) {
    try {
      await json(`/api/v1/leads/${lead.id}/introduce`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ partner_email: partnerEmail, partner_name: partnerName, text }) });
      await loadLeads(`#lead-${lead.id}-intro`);
      say("leads-status", "introDone", { id: lead.id });
    } catch (e) {
      if (!(e instanceof SignedOut)) say("leads-error", "leadFailed", { id: lead.id, detail: e.message });
    }
  }


  // -- FAQ --------------------------------------------------------------------------------------
  const FAQ_LANGS = ["pt", "zh", "en"];

  async function loadFaq() {
    say("faq-error", null);
    const [entries, unanswered] = await Promise.all([json("/api/v1/staff/faq"), json("/api/v1/staff/faq/unanswered")]);
    shownFaq = { entries, unanswered };
    renderFaq();
  }

  function faqForm(entry) {
    const uid = entry ? `faq-${entry.id}` : "faq-new";
    const boxes = FAQ_LANGS.map((lang) => ({
      lang,
      questions: el("textarea", { id: `${uid}-q-${lang}`, rows: "3", lang, maxlength: "3000" }),
      answer: el("textarea", { id: `${uid}-a-${lang}`, rows: "3", lang, maxlength: "2000" }),
    }));
    for (const b of boxes) {
      b.questions.value = entry ? (entry.questions[b.lang] || []).join("\n") : "";
      b.answer.value = entry ? entry.answers[b.lang] || "" : "";
    }
    const body = () => ({
      questions: Object.fromEntries(boxes.map((b) => [b.lang, b.questions.value.split("\n").map((q) => q.trim()).filter(Boolean)])),
      answers: Object.fromEntries(boxes.map((b) => [b.lang, b.answer.value.trim()]).filter(([, a]) => a)),
    });
    const save = async (e) => {
      e.preventDefault();
      try {
        const saved = await json(entry ? `/api/v1/staff/faq/${entry.id}` : "/api/v1/staff/faq",
          { method: entry ? "PUT" : "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body()) });
        await loadFaq();
        say("faq-status", "faqSaved", { id: saved.id });
      } catch (err) {
        if (!(err instanceof SignedOut)) say("faq-error", "faqFailed", { detail: err.message });
      }
    };
    const remove = async () => {
      try {
        await json(`/api/v1/staff/faq/${entry.id}`, { method: "DELETE" });
        await loadFaq();
        say("faq-status", "faqDeleted", { id: entry.id });
      } catch (err) {
        if (!(err instanceof SignedOut)) say("faq-error", "faqFailed", { detail: err.message });
      }
    };
    const langName = (lang) => named("langs", lang);
    return el("form", { class: "stack faq-form", "data-faq": entry ? String(entry.id) : "new", onsubmit: save },
      ...boxes.flatMap((b) => [
        el("div", { class: "field" }, el("label", { for: b.questions.id, text: t("faqQuestions", { lang: langName(b.lang) }) }), b.questions),
        el("div", { class: "field" }, el("label", { for: b.answer.id, text: t("faqAnswer", { lang: langName(b.lang) }) }), b.answer)]),
      el("div", { class: "row" }, el("button", { type: "submit", text: t(entry ? "faqSave" : "faqCreate") }),
        entry ? el("button", { type: "button", class: "secondary", onclick: remove, text: t("faqDelete") }) : null));
  }

  function renderFaq() {
    const { entries, unanswered } = shownFaq;
    say("faq-status", "faqCount", { n: entries.length });
    $("faq").replaceChildren(...(entries.length ? entries.map((e) => el("li", { class: "lead" },
      el("details", {}, el("summary", {}, el("span", { lang: "en", text: (e.questions.en || e.questions.pt || e.questions.zh || [""])[0] }),
        e.missing.length ? el("span", { class: "badge unread", text: t("faqMissing", { langs: e.missing.map((l) => named("langs", l)).join(", ") }) }) : null),
      faqForm(e)))) : [el("li", { class: "empty", text: t("faqNone") })]));
    $("faq-new").replaceChildren(faqForm(null));
    $("unanswered").replaceChildren(...(unanswered.length ? unanswered.map((q) => el("li", {},
      el("small", { class: "sub", text: `${when(q.created)} · ${named("langs", q.lang)} ` }), el("span", { lang: q.lang, text: q.text }), " ",
      el("button", { type: "button", class: "quiet", onclick: guarded(async () => {
        await json(`/api/v1/staff/faq/unanswered/${q.id}`, { method: "DELETE" });
        await loadFaq();
      }, "faq-error", "faqFailed"), text: t("dismiss") }))) : [el("li", { class: "empty", text: t("unansweredNone") })]));
  }

  // -- wiring ---------------------------------------------------------------------------------
  const guarded = (fn, errorId, message) => async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      if (!(e instanceof SignedOut)) say(errorId, message, { detail: e.message });
    }
  };

  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const candidate = $("staff-key").value.trim();
    if (candidate) signIn(candidate);
  });
  $("sign-out").addEventListener("click", () => signOut(null));
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search = null;  // a search asked for is always run
    if ($("q").value.trim()) runSearch(searchBody(0));
  });
  $("prev").addEventListener("click", () => search && runSearch({ ...search.body, offset: Math.max(0, search.body.offset - search.body.limit) }));
  $("next").addEventListener("click", () => search && runSearch({ ...search.body, offset: search.body.offset + search.body.limit }));
  for (const fmt of ["csv", "json"]) {
    $(`export-${fmt}`).addEventListener("click", guarded(() => search && download(`/api/v1/staff/export?format=${fmt}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(search.body) }), "search-error", "exportFailed"));
    $(`leads-${fmt}`).addEventListener("click", guarded(() => {
      const params = leadFilters();
      params.set("format", fmt);
      return download(`/api/v1/leads/export?${params}`);
    }, "leads-error", "exportFailed"));
  }
  $("log-refresh").addEventListener("click", guarded(loadLog, "search-error", "logFailed"));
  $("faq-refresh").addEventListener("click", guarded(loadFaq, "faq-error", "faqFailed"));
  $("zero-only").addEventListener("change", guarded(loadLog, "search-error", "logFailed"));
  $("leads-refresh").addEventListener("click", guarded(() => loadLeads(), "leads-error", "leadsFailed"));
  $("lead-status").addEventListener("change", guarded(() => loadLeads(), "leads-error", "leadsFailed"));
  $("lead-channel").addEventListener("change", guarded(() => loadLeads(), "leads-error", "leadsFailed"));
  $("lead-lang").addEventListener("change", guarded(() => loadLeads(), "leads-error", "leadsFailed"));
  $("lead-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(() => loadLeads(), "leads-error", "leadsFailed")();
  });
  $("record-close").addEventListener("click", () => $("record").close());

  render();
  document.addEventListener("cpc:signed-in", () => start().then(() => $("leads-refresh").focus()));
  if (key) start();
  else session.resume().then((signedIn) => (signedIn ? start() : showConsole(false)));
})();
