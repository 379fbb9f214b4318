// A small Python highlighter: a tokenizer good enough for kernels and KernelBench tasks.
// It returns text nodes and <span class="tok-*"> elements, never markup built from the source.

const KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else except " +
  "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case")
  .split(" "));
const BUILTINS = new Set(("abs all any bool dict enumerate float getattr hasattr int isinstance len list max min " +
  "print range reversed round set setattr sorted str sum super tuple type zip self").split(" "));

// Order matters: comments and strings first so that '#' or keywords inside them stay plain.
const RULES = [
  ["com", /#[^\n]*/y],
  ["str", /(?:[rRbBuUfF]{0,2})(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)/y],
  ["dec", /@[A-Za-z_][\w.]*/y],
  ["num", /(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)/y],
  ["name", /[A-Za-z_][A-Za-z0-9_]*/y],
  ["ws", /\s+/y],
  ["op", /[^\sA-Za-z0-9_#'"@]+/y],
];

export function tokenize(source) {
  const tokens = [];
  let pos = 0;
  let afterDef = false;
  while (pos < source.length) {
    let matched = false;
    for (const [kind, re] of RULES) {
      re.lastIndex = pos;
      const m = re.exec(source);
      if (!m || m[0].length === 0) continue;
      let type = kind;
      const text = m[0];
      if (kind === "name") {
        // A string prefix (f"..", rb'..') is matched by the string rule only when a quote follows.
        if (KEYWORDS.has(text)) type = "kw";
        else if (afterDef) type = "fn";
        else if (BUILTINS.has(text)) type = "builtin";
        else type = "plain";
        afterDef = text === "def" || text === "class";
      } else if (kind !== "ws") {
        afterDef = false;
      }
      tokens.push([type, text]);
      pos += text.length;
      matched = true;
      break;
    }
    if (!matched) { tokens.push(["plain", source[pos]]); pos += 1; }
  }
  return tokens;
}

export function highlight(source) {
  const frag = document.createDocumentFragment();
  for (const [type, text] of tokenize(source || "")) {
    if (type === "plain" || type === "ws" || type === "op") {
      frag.append(document.createTextNode(text));
    } else {
      const span = document.createElement("span");
      span.className = `tok-${type}`;
      span.textContent = text;
      frag.append(span);
    }
  }
  return frag;
}
