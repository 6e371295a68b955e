// A small, safe Markdown renderer for model and user text.
//
// Safety rule: every piece of source text is HTML-escaped before it is placed in the output,
// and the only tags in the output are the ones this file writes. Links keep only http(s) and
// mailto URLs. So a model that answers "<script>" or "<img onerror=…>" shows that text; it
// never runs it. Supported: headings, paragraphs, bold/italic/strikethrough, inline code,
// fenced code blocks (highlighted, with a Copy button), lists (nested, ordered, tasks),
// blockquotes, tables, horizontal rules, links and bare URLs.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESC[c]);
}

// -- syntax highlighting --------------------------------------------------------------------

const words = (s) => new Set(s.split(" "));

const LANGS = {
  python: {
    keywords: words("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case"),
    builtins: words("print len range str int float list dict set tuple open self super isinstance enumerate zip map filter sorted sum min max any all type object Exception ValueError"),
    comment: /#[^\n]*/y,
    string: /[rRbBfFuU]{0,2}("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)/y,
    decorator: /@[A-Za-z_][\w.]*/y,
  },
  javascript: {
    keywords: words("async await break case catch class const continue debugger default delete do else export extends finally for function if import in instanceof let new of return static super switch this throw try typeof var void while with yield from as interface type enum implements"),
    builtins: words("true false null undefined NaN Infinity console window document Promise Array Object String Number Math JSON Map Set Error"),
    comment: /\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/y,
    string: /`(?:\\[\s\S]|[^`\\])*`?|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?/y,
  },
  bash: {
    keywords: words("if then else elif fi for while until do done case esac in function return local export readonly set unset shift exit break continue source alias"),
    builtins: words("echo cd ls cat grep sed awk curl wget pip python python3 git make sudo apt apt-get mkdir rm cp mv chmod chown tar docker npm test read printf"),
    comment: /(^|(?<=\s))#[^\n]*/y,
    string: /"(?:\\.|[^"\\])*"?|'[^']*'?/y,
    variable: /\$(?:\{[^}\n]*\}|[A-Za-z_]\w*|[0-9@#?$!*-])/y,
  },
  json: {
    keywords: words("true false null"),
    builtins: new Set(),
    comment: null,
    string: /"(?:\\.|[^"\\\n])*"?/y,
    key: /"(?:\\.|[^"\\\n])*"(?=\s*:)/y,
  },
};
const ALIASES = {
  py: "python", python3: "python", js: "javascript", jsx: "javascript", ts: "javascript",
  typescript: "javascript", tsx: "javascript", node: "javascript", mjs: "javascript",
  sh: "bash", shell: "bash", zsh: "bash", console: "bash", shellscript: "bash", jsonc: "json",
};

export function languageOf(name) {
  const key = (name || "").toLowerCase();
  return LANGS[key] ? key : ALIASES[key] || null;
}

const NUMBER = /-?\b(?:0[xX][\da-fA-F_]+|0[bB][01_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)\b/y;
const WORD = /[A-Za-z_$][\w$]*/y;

function match(re, code, at) {
  if (!re) return null;
  re.lastIndex = at;
  const m = re.exec(code);
  return m && m[0].length > 0 ? m[0] : null;
}

// Returns escaped HTML: each token of `code` escaped and wrapped in a span naming its kind.
export function highlight(code, lang) {
  const spec = LANGS[languageOf(lang)];
  if (!spec) return escapeHtml(code);
  let out = "";
  let plain = "";
  const flush = () => { out += escapeHtml(plain); plain = ""; };
  const emit = (cls, text) => { flush(); out += `<span class="tok-${cls}">${escapeHtml(text)}</span>`; };
  let i = 0;
  while (i < code.length) {
    let t;
    if ((t = match(spec.comment, code, i))) emit("comment", t);
    else if ((t = match(spec.key, code, i))) emit("key", t);
    else if ((t = match(spec.string, code, i))) emit("string", t);
    else if ((t = match(spec.decorator, code, i))) emit("builtin", t);
    else if ((t = match(spec.variable, code, i))) emit("variable", t);
    else if ((t = match(NUMBER, code, i)) && !/[\w$]/.test(code[i - 1] || "")) emit("number", t);
    else if ((t = match(WORD, code, i))) {
      if (spec.keywords.has(t)) emit("keyword", t);
      else if (spec.builtins.has(t)) emit("builtin", t);
      else plain += t;
    } else {
      t = code[i];
      plain += t;
    }
    i += t.length;
  }
  flush();
  return out;
}

// -- inline ---------------------------------------------------------------------------------

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function inline(raw) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let s = raw;
  // Code spans first, so nothing inside them is treated as markup.
  s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, __, code) => hold(`<code>${escapeHtml(code.trim() || code)}</code>`));
  // Links [label](url): the URL must be http(s) or mailto; anything else shows as text.
  s = s.replace(/\[([^\]\n]+)\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"\n]*")?\s*\)/g, (all, label, url) => {
    if (!SAFE_URL.test(url)) return hold(escapeHtml(label));
    return hold(`<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer nofollow">${inlineText(label)}</a>`);
  });
  s = s.replace(/<(https?:\/\/[^\s>]+)>/g, (_, url) => hold(link(url)));
  s = s.replace(/\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g, (url) => hold(link(url)));
  return inlineText(s).replace(/\u0000(\d+)\u0000/g, (_, n) => held[Number(n)]);
}

function link(url) {
  return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer nofollow">${escapeHtml(url)}</a>`;
}

// Emphasis on already-held text: escape, then the few emphasis forms.
function inlineText(s) {
  let h = escapeHtml(s);
  h = h.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>");
  h = h.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, "$1<strong>$2</strong>");
  h = h.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>");
  h = h.replace(/(^|[^\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)/g, "$1<em>$2</em>");
  h = h.replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
  return h;
}

// -- blocks ---------------------------------------------------------------------------------

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

function codeBlock(lang, code) {
  const known = languageOf(lang);
  const label = escapeHtml(lang || "text");
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
    `<pre><code${known ? ` class="lang-${known}"` : ""}>${highlight(code, lang)}</code></pre></div>`
  );
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function table(header, sep, rows) {
  const aligns = splitRow(sep).map((c) => (c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : ""));
  // A class, not a style attribute: the CSP allows no inline style.
  const cell = (tag, text, i) => `<${tag}${aligns[i] ? ` class="align-${aligns[i]}"` : ""}>${inline(text)}</${tag}>`;
  const head = splitRow(header).map((c, i) => cell("th", c, i)).join("");
  const body = rows.map((r) => `<tr>${splitRow(r).map((c, i) => cell("td", c, i)).join("")}</tr>`).join("");
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

// Lists: items at a deeper indent than the first become a nested list inside the item above.
function list(lines) {
  const first = lines[0].match(ITEM);
  const baseIndent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const start = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  for (const line of lines) {
    const m = line.match(ITEM);
    if (m && m[1].length <= baseIndent + 1) items.push({ text: m[3], sub: [] });
    else if (items.length) items[items.length - 1].sub.push(line);
  }
  const html = items
    .map(({ text, sub }) => {
      let body = text;
      let task = "";
      const t = body.match(/^\[([ xX])\]\s+(.*)$/);
      if (t) {
        task = `<input type="checkbox" disabled${t[1] === " " ? "" : " checked"}> `;
        body = t[2];
      }
      const nested = sub.some((l) => ITEM.test(l)) ? blocks(dedent(sub)) : sub.length ? " " + inline(sub.join(" ").trim()) : "";
      return `<li>${task}${inline(body)}${nested}</li>`;
    })
    .join("");
  const tag = ordered ? "ol" : "ul";
  return `<${tag}${ordered && start !== 1 ? ` start="${start}"` : ""}>${html}</${tag}>`;
}

function dedent(lines) {
  const indents = lines.filter((l) => l.trim()).map((l) => l.match(/^\s*/)[0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return lines.map((l) => l.slice(cut));
}

function blocks(lines) {
  const out = [];
  let para = [];
  const endPara = () => {
    if (para.length) out.push(`<p>${para.map(inline).join("<br>")}</p>`);
    para = [];
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = line.match(FENCE))) {
      endPara();
      const marker = m[1];
      const body = [];
      i++;
      // An unclosed fence (an answer still streaming) runs to the end.
      while (i < lines.length && !(lines[i].trim().startsWith(marker[0].repeat(marker.length)) && lines[i].trim().replace(/[`~]/g, "") === "")) body.push(lines[i++]);
      i++;
      out.push(codeBlock(m[2], body.join("\n")));
      continue;
    }
    if (!line.trim()) { endPara(); i++; continue; }
    if ((m = line.match(HEADING))) {
      endPara();
      const level = m[1].length;
      out.push(`<h${level}>${inline(m[2])}</h${level}>`);
      i++;
      continue;
    }
    if (RULE.test(line)) { endPara(); out.push("<hr>"); i++; continue; }
    if (QUOTE.test(line)) {
      endPara();
      const inner = [];
      while (i < lines.length && lines[i].trim() && (m = lines[i].match(QUOTE))) { inner.push(m[1]); i++; }
      out.push(`<blockquote>${blocks(inner)}</blockquote>`);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      endPara();
      const header = line;
      const sep = lines[i + 1];
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(lines[i++]);
      out.push(table(header, sep, rows));
      continue;
    }
    if (ITEM.test(line) && !(para.length && /^\s*\d/.test(line) && !/^\s*1[.)]/.test(line))) {
      endPara();
      const items = [line];
      const [, indent, marker] = line.match(ITEM);
      const ordered = /\d/.test(marker);
      // Another item of the same list: an item nested deeper, or one at this level of the
      // same kind (a bullet after a numbered list starts a new list).
      const sameList = (l) => {
        const m = l.match(ITEM);
        return m && (m[1].length > indent.length + 1 || /\d/.test(m[2]) === ordered);
      };
      i++;
      // The list goes on through its items, indented continuation lines and single blank
      // lines between items.
      while (i < lines.length) {
        const next = lines[i];
        if (sameList(next) || (!ITEM.test(next) && next.trim() && /^\s{2,}/.test(next))) { items.push(next); i++; }
        else if (!next.trim() && i + 1 < lines.length && sameList(lines[i + 1])) i++;
        else break;
      }
      out.push(list(items));
      continue;
    }
    para.push(line);
    i++;
  }
  endPara();
  return out.join("");
}

// Markdown source -> HTML that contains no unescaped source text.
export function renderMarkdown(source) {
  const text = String(source ?? "").replace(/\r\n?/g, "\n").replace(/\u0000/g, "");
  return blocks(text.split("\n"));
}
