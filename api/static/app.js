// The web page of `rag serve`: ask with the answer streaming in, see the sources, add
// documents. Plain modern JavaScript, no build step, nothing fetched from elsewhere.

const STRINGS = {
  en: {
    skip: "Skip to the question", index: "Index", newConversation: "New conversation",
    changeKey: "API key", switchLanguage: "Passer en français", dismiss: "Dismiss",
    keyTitle: "This service needs an API key",
    keyHelp: "Enter the key you were given. It is kept in this browser.",
    key: "API key", keySubmit: "Continue",
    wrongKey: "Wrong key: the service refused it. Check it and try again.",
    empty: "Ask a question about your documents.", question: "Question",
    placeholder: "Ask a question… (Enter to send, Shift+Enter for a new line)",
    send: "Ask", stop: "Stop", you: "You", assistant: "Answer",
    thinking: "Searching the documents…", stopped: "Stopped.",
    sources: "Sources", seeAlso: "See also", cited: "cited", page: "page", score: "score",
    showPassage: "Show the whole passage", hidePassage: "Show less",
    unsupported: "Not supported by the documents",
    abstained: "Not in the documents", noContext: "Nothing found in the documents",
    truncated: "The answer was cut at its length limit.",
    cutOff: "The connection closed before the answer was complete.",
    addDocuments: "Add documents", files: "Files", folder: "Or a folder", intoIndex: "Into the index",
    upload: "Upload and ingest", chooseFiles: "Choose files or a folder first.",
    indexes: "Indexes", name: "Name", filesCol: "Files", chunks: "Chunks", size: "Size",
    lastIngest: "Last ingest", noIndexes: "No index yet: add documents to create one.",
    loading: "The models are loading…", unreachable: "The service cannot be reached.",
    job: "Ingest into", queued: "queued", running: "running", done: "done", failed: "failed",
    added: "added", updated: "updated", unchanged: "unchanged", removed: "removed", skipped: "skipped",
    filesDone: (done, total) => `${done} of ${total ?? "?"} files`,
    failedFiles: (n) => `${n} file${n === 1 ? "" : "s"} failed`,
    uploading: (n) => `Uploading ${n} file${n === 1 ? "" : "s"}…`,
    error: "Error",
  },
  fr: {
    skip: "Aller à la question", index: "Index", newConversation: "Nouvelle conversation",
    changeKey: "Clé d’API", switchLanguage: "Switch to English", dismiss: "Fermer",
    keyTitle: "Ce service demande une clé d’API",
    keyHelp: "Saisissez la clé qui vous a été donnée. Elle est gardée dans ce navigateur.",
    key: "Clé d’API", keySubmit: "Continuer",
    wrongKey: "Clé refusée par le service. Vérifiez-la et réessayez.",
    empty: "Posez une question sur vos documents.", question: "Question",
    placeholder: "Posez une question… (Entrée pour envoyer, Maj+Entrée pour une nouvelle ligne)",
    send: "Demander", stop: "Arrêter", you: "Vous", assistant: "Réponse",
    thinking: "Recherche dans les documents…", stopped: "Arrêté.",
    sources: "Sources", seeAlso: "Voir aussi", cited: "citée", page: "page", score: "score",
    showPassage: "Voir tout le passage", hidePassage: "Voir moins",
    unsupported: "Non étayé par les documents",
    abstained: "Absent des documents", noContext: "Rien trouvé dans les documents",
    truncated: "La réponse a été coupée à sa longueur maximale.",
    cutOff: "La connexion a été coupée avant la fin de la réponse.",
    addDocuments: "Ajouter des documents", files: "Fichiers", folder: "Ou un dossier", intoIndex: "Dans l’index",
    upload: "Envoyer et indexer", chooseFiles: "Choisissez d’abord des fichiers ou un dossier.",
    indexes: "Index", name: "Nom", filesCol: "Fichiers", chunks: "Passages", size: "Taille",
    lastIngest: "Dernier ajout", noIndexes: "Aucun index : ajoutez des documents pour en créer un.",
    loading: "Chargement des modèles…", unreachable: "Le service est injoignable.",
    job: "Indexation dans", queued: "en attente", running: "en cours", done: "terminé", failed: "échec",
    added: "ajouté", updated: "mis à jour", unchanged: "inchangé", removed: "retiré", skipped: "ignoré",
    filesDone: (done, total) => `${done} fichier(s) sur ${total ?? "?"}`,
    failedFiles: (n) => `${n} fichier(s) en échec`,
    uploading: (n) => `Envoi de ${n} fichier(s)…`,
    error: "Erreur",
  },
};

const KEYS = { key: "rag.key", lang: "rag.lang", index: "rag.index", conversation: "rag.conversation" };
const $ = (id) => document.getElementById(id);
const store = {
  get: (k) => { try { return localStorage.getItem(k); } catch { return null; } },
  set: (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode: kept for this page only */ } },
  remove: (k) => { try { localStorage.removeItem(k); } catch { /* idem */ } },
};

let lang = pickLanguage();
let conversation = loadConversation();
let running = null; // the AbortController of the answer being streamed
let defaultIndex = "";

function pickLanguage() {
  const saved = store.get(KEYS.lang);
  if (saved in STRINGS) return saved;
  return (navigator.languages || [navigator.language || "en"]).some((l) => l.toLowerCase().startsWith("fr"))
    ? "fr" : "en";
}

function t(name, ...args) {
  const s = STRINGS[lang][name] ?? STRINGS.en[name] ?? name;
  return typeof s === "function" ? s(...args) : s;
}

function translatePage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  $("lang").textContent = lang === "fr" ? "EN" : "FR";
  $("lang").setAttribute("lang", lang === "fr" ? "en" : "fr");
}

// -- talking to the API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

function headers(extra = {}) {
  const key = store.get(KEYS.key);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    if (body?.error?.message) { message = body.error.message; code = body.error.code; }
  } catch { /* not JSON: the status says it */ }
  return new ApiError(response.status, message, code);
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, t("unreachable"));
  }
  if (!response.ok) {
    const error = await failure(response);
    if (error.status === 401) askForKey(store.get(KEYS.key) ? t("wrongKey") : "");
    throw error;
  }
  return response;
}

function showError(error) {
  if (error?.name === "AbortError") return;
  if (error instanceof ApiError && error.status === 401) return; // the key form says it
  $("banner-text").textContent = `${t("error")}: ${error?.message ?? error}`;
  $("banner").hidden = false;
}

function hideError() { $("banner").hidden = true; }

// -- the key --------------------------------------------------------------------------

function askForKey(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("key-error").hidden = !message;
  $("key-error").textContent = message;
  $("key").value = "";
  $("key").focus();
}

async function start() {
  hideError();
  try {
    const health = await fetch("/health").catch(() => { throw new ApiError(0, t("unreachable")); });
    if (health.status === 503) {
      const body = await health.json().catch(() => ({}));
      $("login").hidden = true; $("app").hidden = false;
      if (body.status === "error") { showError(new Error(body.detail || "the models could not load")); return; }
      $("status").textContent = t("loading");
      setTimeout(start, 2000);
      return;
    }
    await refreshIndexes();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      $("app").hidden = false; showError(error);
    }
    return;
  }
  $("status").textContent = "";
  $("login").hidden = true;
  $("app").hidden = false;
  $("change-key").hidden = !store.get(KEYS.key);
  renderConversation();
  $("question").focus();
}

// -- indexes --------------------------------------------------------------------------

async function listIndexes() {
  try {
    return await (await api("/indexes")).json();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    // An older service: the names only.
    const models = await (await api("/v1/models")).json();
    return { default: "default", data: models.data.map((m) => ({ name: m.id })) };
  }
}

async function refreshIndexes() {
  const list = await listIndexes();
  defaultIndex = list.default || "default";
  const names = list.data.map((i) => i.name);
  const select = $("index");
  const wanted = select.value || store.get(KEYS.index) || defaultIndex;
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  // A key sees only its indexes: another name is offered only while there is none yet.
  const chosen = names.includes(wanted) || !names.length ? wanted : names[0];
  if (!names.includes(chosen)) select.append(new Option(chosen, chosen));
  select.value = chosen;
  // A key that may only read does not see the upload form (the service would refuse it).
  $("upload-section").hidden = list.role === "read";
  $("index-names").replaceChildren(...names.map((n) => new Option(n)));
  if (!$("upload-index").value) $("upload-index").value = chosen;

  const rows = list.data.map((i) => el("tr", {}, [
    el("th", { scope: "row" }, i.name),
    el("td", { class: "num" }, fmtNumber(i.files)),
    el("td", { class: "num" }, fmtNumber(i.chunks)),
    el("td", { class: "num" }, i.size_bytes == null ? "" : fmtSize(i.size_bytes)),
    el("td", {}, i.last_ingest ? new Date(i.last_ingest * 1000).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "–"),
  ]));
  if (!rows.length) rows.push(el("tr", {}, [el("td", { colspan: "5" }, t("noIndexes"))]));
  $("indexes").tBodies[0].replaceChildren(...rows);
}

function fmtNumber(n) { return n == null ? "" : n.toLocaleString(lang); }

function fmtSize(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i++; }
  return `${bytes.toLocaleString(lang, { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

// -- the conversation ---------------------------------------------------------------

function loadConversation() {
  try {
    const saved = JSON.parse(store.get(KEYS.conversation) || "[]");
    return Array.isArray(saved) ? saved.map((turn) => ({ ...turn, streaming: false })) : [];
  } catch { return []; }
}

function saveConversation() {
  // The oldest turns go first when the browser's storage is full.
  for (let from = 0; from <= conversation.length; from++) {
    try {
      localStorage.setItem(KEYS.conversation, JSON.stringify(conversation.slice(from)));
      return;
    } catch { /* full, or no storage at all */ }
  }
}

function history() {
  // Earlier answered turns only: an answer that failed is not sent back as said.
  const turns = [];
  for (const turn of conversation) {
    if (turn.error || turn.streaming) continue;
    turns.push({ role: "user", content: turn.question }, { role: "assistant", content: turn.answer || "" });
  }
  return turns;
}

async function ask(question) {
  hideError();
  const turn = { question, index: $("index").value, answer: "", sources: [], streaming: true };
  const previous = history();
  conversation.push(turn);
  renderConversation();
  const controller = new AbortController();
  running = controller;
  setStreaming(true);
  try {
    const response = await api("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, index: turn.index || undefined, history: previous, stream: true }),
      signal: controller.signal,
    });
    let finished = false;
    for await (const [name, data] of events(response)) {
      if (name === "token") { turn.answer += data.text; renderTurn(turn); }
      else if (name === "sources") { turn.sources = data; renderTurn(turn); }
      else if (name === "done") {
        // The final text (citations rewritten) may differ from the streamed draft.
        finished = true;
        if (typeof data.answer === "string") turn.answer = data.answer;
        for (const k of ["abstained", "sentences", "unsupported", "found_context", "finish_reason", "language"]) {
          if (k in data) turn[k] = data[k];
        }
      } else if (name === "error") {
        throw new ApiError(500, data?.error?.message ?? "error", data?.error?.code);
      }
    }
    if (!finished) throw new ApiError(0, t("cutOff"));
  } catch (error) {
    if (error.name === "AbortError") turn.stopped = true;
    else { turn.error = error.message; showError(error); }
  } finally {
    turn.streaming = false;
    if (running === controller) running = null;
    setStreaming(false);
    saveConversation();
    renderTurn(turn);
  }
}

async function* events(response) {
  // Server-sent events from a fetch body (EventSource cannot POST or send a key).
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield [name, JSON.parse(data.join("\n"))];
    }
  }
}

function setStreaming(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  if (on) $("stop").focus({ preventScroll: true });
  else if (document.activeElement === $("stop") || document.activeElement === document.body) $("question").focus();
}

function newConversation() {
  running?.abort();
  conversation = [];
  saveConversation();
  renderConversation();
  $("question").focus();
}

// -- rendering ------------------------------------------------------------------------

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of [].concat(children)) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

function renderConversation() {
  $("conversation").replaceChildren(...conversation.map((turn, i) => {
    turn.id = i;
    return el("li", { class: "turn", id: `turn-${i}` });
  }));
  conversation.forEach(renderTurn);
  $("empty").hidden = conversation.length > 0;
}

function renderTurn(turn) {
  const li = $(`turn-${turn.id}`);
  if (!li) return;
  const abstained = turn.abstained || turn.found_context === false;
  const answer = el("div", { class: `answer${abstained ? " notice" : ""}${turn.streaming ? " streaming" : ""}`,
                             "aria-busy": turn.streaming ? "true" : "false" });
  if (abstained) answer.append(el("p", { class: "notice-label" }, t(turn.abstained ? "abstained" : "noContext")));
  const text = el("div", { class: "answer-text", lang: turn.language || null });
  if (!turn.answer && turn.streaming) text.append(el("span", { class: "muted" }, t("thinking")));
  else renderAnswerText(text, turn);
  answer.append(text);
  if (turn.stopped) answer.append(el("p", { class: "muted" }, t("stopped")));
  if (turn.finish_reason === "length") answer.append(el("p", { class: "muted" }, t("truncated")));
  if (turn.error) answer.append(el("p", { class: "error" }, `${t("error")}: ${turn.error}`));

  li.replaceChildren(
    el("div", { class: "question" }, [el("span", { class: "visually-hidden" }, `${t("you")}: `), turn.question]),
    answer,
    renderSources(turn, abstained),
  );
}

const CITATION = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

function renderAnswerText(container, turn) {
  const text = turn.answer || "";
  const sentences = (turn.sentences || []).filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end))
    .sort((a, b) => a.start - b.start);
  const unsupported = new Set(turn.unsupported || []);
  let at = 0;
  for (const s of sentences) {
    if (s.start < at || s.end > text.length) continue;
    appendCited(container, text.slice(at, s.start), turn);
    // An answer that says the documents do not say makes no claim to back.
    const weak = !turn.abstained && ((s.checked && !s.supported) || (s.checked == null && unsupported.has(s.text)));
    const span = el("span", weak ? { class: "unsupported", title: t("unsupported") } : {});
    appendCited(span, text.slice(s.start, s.end), turn);
    if (weak) span.append(el("span", { class: "visually-hidden" }, ` (${t("unsupported")})`));
    container.append(span);
    at = s.end;
  }
  appendCited(container, text.slice(at), turn);
}

function appendCited(container, text, turn) {
  // [n] and [1, 3] become links to the source cards.
  const numbers = new Set((turn.sources || []).map((s) => s.number));
  let at = 0;
  for (const m of text.matchAll(CITATION)) {
    container.append(text.slice(at, m.index));
    const cite = el("span", { class: "cite" }, "[");
    m[1].split(",").map((n) => Number(n.trim())).forEach((n, i) => {
      if (i) cite.append(", ");
      cite.append(numbers.has(n)
        ? el("a", { href: `#src-${turn.id}-${n}`, onclick: (e) => { e.preventDefault(); openSource(turn.id, n); } }, String(n))
        : String(n));
    });
    cite.append("]");
    container.append(cite);
    at = m.index + m[0].length;
  }
  container.append(text.slice(at));
}

function renderSources(turn, abstained) {
  const sources = turn.sources || [];
  if (!sources.length) return el("div", { hidden: true });
  return el("section", { class: "sources", "aria-label": t(abstained ? "seeAlso" : "sources") }, [
    el("h3", {}, t(abstained ? "seeAlso" : "sources")),
    el("ol", {}, sources.map((s) => renderSource(turn, s))),
  ]);
}

function renderSource(turn, source) {
  const id = `src-${turn.id}-${source.number}`;
  const passage = el("blockquote", { class: "passage", id: `${id}-text` });
  const card = el("li", { class: `source${source.cited ? " cited" : ""}`, id });
  const meta = [
    el("span", { class: "num" }, `[${source.number}]`),
    el("span", { class: "source-path" }, source.path),
    source.pages || source.page ? el("span", { class: "tag" }, `${t("page")} ${source.pages || source.page}`) : null,
    source.heading ? el("span", { class: "source-heading" }, source.heading) : null,
    el("span", { class: "tag" }, `${t("score")} ${Number(source.score).toFixed(2)}`),
    source.cited ? el("span", { class: "tag cited" }, t("cited")) : null,
  ];
  const whole = Boolean(source.text) && source.text !== source.snippet;
  const toggle = el("button", { type: "button", class: "source-head", "aria-expanded": "false",
                                "aria-controls": `${id}-text`, title: whole ? t("showPassage") : null,
                                onclick: () => setExpanded(card, toggle.getAttribute("aria-expanded") !== "true") }, meta);
  card.append(toggle, passage);
  card._render = (expanded) => renderPassage(passage, source, expanded);
  card._render(false);
  return card;
}

function setExpanded(card, expanded) {
  const toggle = card.querySelector(".source-head");
  toggle.setAttribute("aria-expanded", String(expanded));
  card.classList.toggle("expanded", expanded);
  card._render(expanded);
}

function openSource(turnId, number) {
  const card = $(`src-${turnId}-${number}`);
  if (!card) return;
  setExpanded(card, true);
  card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  card.querySelector(".source-head").focus({ preventScroll: true });
  card.classList.remove("flash");
  void card.offsetWidth; // restart the animation
  card.classList.add("flash");
}

const PREVIEW = 240;

function renderPassage(node, source, expanded) {
  // The supporting spans are offsets in the full passage; without them, the snippet.
  const text = source.text || source.snippet || "";
  const spans = (source.text ? source.spans || [] : [])
    .map(([a, b]) => [Math.max(0, a), Math.min(text.length, b)]).filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let from = 0, to = text.length;
  if (!expanded && text.length > PREVIEW) {
    if (spans.length) {
      from = Math.max(0, spans[0][0] - 60);
      const space = text.slice(from, spans[0][0]).search(/\s/);
      if (from > 0 && space >= 0) from += space + 1; // start at a word
      to = Math.min(text.length, Math.max(spans[0][1] + 40, from + PREVIEW));
    } else {
      to = PREVIEW;
    }
  }
  const parts = [];
  if (from > 0) parts.push("… ");
  let at = from;
  for (const [a, b] of spans) {
    if (b <= at || a >= to) continue;
    const start = Math.max(a, at);
    parts.push(text.slice(at, start), el("mark", {}, text.slice(start, Math.min(b, to))));
    at = Math.min(b, to);
  }
  parts.push(text.slice(at, to));
  if (to < text.length) parts.push(" …");
  node.replaceChildren(...parts);
}

// -- uploads --------------------------------------------------------------------------

function hidden(path) { return path.split("/").some((part) => part.startsWith(".")); }

async function upload(event) {
  event.preventDefault();
  hideError();
  const chosen = [...$("files").files, ...$("folder").files]
    .map((file) => [file, file.webkitRelativePath || file.name])
    .filter(([, name]) => !hidden(name)); // a folder's .DS_Store and the like are not documents
  if (!chosen.length) { showError(new Error(t("chooseFiles"))); return; }
  const index = $("upload-index").value.trim() || $("index").value || defaultIndex;
  const form = new FormData();
  form.append("index", index);
  for (const [file, name] of chosen) form.append("files", file, name);
  const item = el("li", { class: "job" }, el("p", { class: "muted" }, t("uploading", chosen.length)));
  $("jobs").prepend(item);
  $("upload").disabled = true;
  try {
    let job = await (await api("/ingest", { method: "POST", body: form })).json();
    $("files").value = ""; $("folder").value = "";
    renderJob(item, job);
    while (job.status === "queued" || job.status === "running") {
      await new Promise((r) => setTimeout(r, 500));
      job = await (await api(`/ingest/${encodeURIComponent(job.id)}`)).json();
      renderJob(item, job);
    }
    await refreshIndexes();
  } catch (error) {
    item.remove();
    showError(error);
  } finally {
    $("upload").disabled = false;
  }
}

function renderJob(item, job) {
  const progress = job.progress || {};
  const failed = (job.files || []).filter((f) => f.status === "failed").length;
  item.dataset.status = job.status;
  item.dataset.job = JSON.stringify(job); // rendered again when the language changes
  item.replaceChildren(...[
    el("p", {}, [`${t("job")} `, el("strong", {}, job.index), " — ",
                 el("span", { class: `job-status ${job.status}` }, t(job.status))]),
    el("progress", { max: String(progress.files_total || 1),
                     value: String(job.status === "done" ? progress.files_total || 1 : progress.files_done || 0),
                     "aria-label": t("filesDone", progress.files_done || 0, progress.files_total) }),
    el("p", { class: "muted" }, [t("filesDone", progress.files_done || 0, progress.files_total),
                                 failed ? ` · ${t("failedFiles", failed)}` : ""]),
    job.error ? el("p", { class: "error" }, job.error) : null,
    el("ul", { class: "job-files" }, (job.files || []).map((f) => el("li", { class: `file ${f.status}` }, [
      el("span", { class: "file-path" }, f.path.split("/").slice(-2).join("/")), " ",
      el("span", { class: `tag ${f.status}` }, t(f.status)),
      f.reason ? el("span", { class: "reason" }, ` ${f.reason}`) : null,
    ]))),
  ].filter(Boolean));
}

// -- wiring ---------------------------------------------------------------------------

function wire() {
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const question = $("question").value.trim();
    if (!question || running) return;
    $("question").value = "";
    ask(question);
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && running) running.abort(); });
  $("stop").addEventListener("click", () => running?.abort());
  $("new-conversation").addEventListener("click", newConversation);
  $("index").addEventListener("change", () => {
    store.set(KEYS.index, $("index").value);
    $("upload-index").value = $("index").value;
  });
  $("upload-form").addEventListener("submit", upload);
  $("banner-close").addEventListener("click", hideError);
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    store.set(KEYS.key, $("key").value.trim());
    start();
  });
  $("change-key").addEventListener("click", () => { store.remove(KEYS.key); askForKey(""); });
  $("lang").addEventListener("click", () => {
    lang = lang === "fr" ? "en" : "fr";
    store.set(KEYS.lang, lang);
    translatePage();
    renderConversation();
    for (const item of $("jobs").children) if (item.dataset.job) renderJob(item, JSON.parse(item.dataset.job));
    if (!$("app").hidden) refreshIndexes().catch(showError);
  });
}

translatePage();
wire();
start();
