/*
 * render.js: Markdown + LaTeX for the chat page, rendered while the answer arrives.
 *
 * Deliberate choices:
 *  - Libraries, not regexes: markdown-it (tables, lists, code), markdown-it-texmath with KaTeX
 *    for $…$, $$…$$, \(…\) and \[…\] (the math is tokenised before Markdown's escapes and
 *    emphasis can mangle it), DOMPurify on the result. All vendored (vendor/), no CDN.
 *  - Model output is untrusted. markdown-it runs with html:false (raw HTML is shown as text)
 *    and refuses javascript:/vbscript:/data: links; images are off (a picture of another site
 *    would be a request elsewhere, and a tracking pixel); KaTeX runs untrusted (no \href to
 *    scripts, no \htmlStyle). DOMPurify then sanitises what all that produced: a second wall.
 *    Links open in a new tab without the page as opener.
 *  - Linear cost. Re-rendering the whole answer on every token costs 1 + 2 + … + n: quadratic.
 *    Like the notebook view (helpers/views/show.py, split_blocks), the text is cut into finished
 *    blocks (a blank line outside $$ math and code fences ends one) that are rendered once,
 *    and the open tail, re-rendered on each redraw, is kept short by cutting it at a safe
 *    word boundary. The same rule as the Python one, so both views cut alike.
 *
 * Works as a classic <script> (window.ChatRender) and in node (require) for the pure parts.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.ChatRender = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var SOFT_LIMIT = 600;    // an open paragraph longer than this is cut at a safe word boundary
  var HARD_LIMIT = 2400;   // an open block longer than this is cut at any whitespace
  var FENCE = /^ {0,3}(`{3,}|~{3,})/;
  var SENTENCE_END = "。！？；";
  var SPACE = /\s/;
  var LETTER = /\p{L}/u;

  function count(text, needle) {
    var n = 0, at = text.indexOf(needle);
    while (at >= 0) { n++; at = text.indexOf(needle, at + needle.length); }
    return n;
  }

  /** Split Markdown into finished blocks and the open tail: blocks.join("") + tail === text. */
  function splitBlocks(text, softLimit, hardLimit) {
    var soft = softLimit || SOFT_LIMIT, hard = hardLimit || HARD_LIMIT;
    var blocks = [], start = 0, pos = 0, fence = null, inMath = false, newline;
    while ((newline = text.indexOf("\n", pos)) >= 0) {
      var line = text.slice(pos, newline);
      pos = newline + 1;
      var marker = FENCE.exec(line);
      if (marker && (fence === null || marker[1].indexOf(fence) === 0)) {
        fence = fence === null ? marker[1].slice(0, 3) : null;
      } else if (fence === null && count(line, "$$") % 2) {
        inMath = !inMath;
      }
      if (!line.trim() && fence === null && !inMath && text.slice(start, pos).trim()) {
        blocks.push(text.slice(start, pos));
        start = pos;
      }
    }
    var tail = text.slice(start);
    while (tail.length > soft) {
      var cut = safeCut(tail, tail.length > hard);
      if (!cut) break;
      blocks.push(tail.slice(0, cut));
      tail = tail.slice(cut);
    }
    return { blocks: blocks, tail: tail };
  }

  /** The last position where the text may be cut (0 if none): before a word, outside math. */
  function safeCut(text, forced) {
    var best = 0, lastSpace = 0, dollars = 0, display = false, fence = false;
    var i = 0, n = text.length;
    while (i < n) {
      var ch = text.charAt(i);
      if (ch === "\\") { i += 2; continue; }
      if (ch === "`" && text.startsWith("```", i) && (i === 0 || text.charAt(i - 1) === "\n")) {
        fence = !fence;
        i += 3;
        continue;
      }
      if (ch === "$") {
        if (text.startsWith("$$", i)) { display = !display; i += 2; continue; }
        dollars++;
      }
      var outside = !(display || fence || dollars % 2);
      if (i + 1 < n) {
        var next = String.fromCodePoint(text.codePointAt(i + 1));
        if (SPACE.test(ch)) {
          lastSpace = i + 1;
          if (outside && LETTER.test(next)) best = i + 1;
        } else if (SENTENCE_END.indexOf(ch) >= 0 && outside && !SPACE.test(next)) {
          best = i + 1;
        }
      }
      i++;
    }
    if (best || !forced) return best;
    return lastSpace || n;
  }

  // -- browser side: Markdown + math -> sanitised DOM -------------------------------------------
  var TEMPLATES = {   // texmath's templates, as plain elements DOMPurify keeps
    math_inline: '<span class="math">$1</span>',
    math_inline_double: '<div class="math-display">$1</div>',
    math_block: '<div class="math-display">$1</div>',
    math_block_eqno: '<div class="math-display eqno">$1<span class="eqno-label">($2)</span></div>',
  };
  var PURIFY = {
    USE_PROFILES: { html: true, mathMl: true, svg: true },   // KaTeX draws \sqrt with SVG
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "iframe"],
    SANITIZE_NAMED_PROPS: true,
    RETURN_DOM_FRAGMENT: true,
  };
  var markdown = null;

  /** KaTeX with a small cache: the open tail re-renders the same formulas on every redraw. */
  function memoised(katex) {
    var cache = new Map();
    return {
      renderToString: function (tex, options) {
        var key = (options && options.displayMode ? "D" : "I") + tex;
        var html = cache.get(key);
        if (html === undefined) {
          if (cache.size >= 500) cache.clear();
          html = katex.renderToString(tex, options);
          cache.set(key, html);
        }
        return html;
      },
    };
  }

  function setUp() {
    var texmath = self.texmath, purify = self.DOMPurify;
    Object.keys(texmath.rules).forEach(function (name) {
      var rules = texmath.rules[name];
      rules.inline.concat(rules.block).forEach(function (rule) {
        if (TEMPLATES[rule.name]) rule.tmpl = TEMPLATES[rule.name];
      });
    });
    markdown = self.markdownit({ html: false, linkify: true, typographer: false });
    markdown.disable("image");
    markdown.use(texmath, {
      engine: memoised(self.katex), delimiters: ["dollars", "brackets"],
      katexOptions: { throwOnError: false, trust: false, strict: "ignore", maxExpand: 500 },
    });
    purify.addHook("afterSanitizeAttributes", function (node) {
      if (node.tagName === "A" && node.hasAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
  }

  /** Markdown with math -> a sanitised DocumentFragment. */
  function render(text) {
    if (markdown === null) setUp();
    return self.DOMPurify.sanitize(markdown.render(text), PURIFY);
  }

  /**
   * A pane that shows growing Markdown: append(text) is cheap, redraw() renders the blocks
   * finished since the last redraw once each and re-renders only the open tail.
   */
  function createView(element, options) {
    var soft = (options && options.softLimit) || SOFT_LIMIT;
    var hard = (options && options.hardLimit) || HARD_LIMIT;
    var pending = "", shownTail = null;
    var tail = document.createElement("div");
    tail.className = "block tail";
    element.appendChild(tail);
    return {
      append: function (text) { pending += text; },
      redraw: function () {
        var parts = splitBlocks(pending, soft, hard);
        for (var i = 0; i < parts.blocks.length; i++) {
          var block = document.createElement("div");
          block.className = "block";
          block.appendChild(render(parts.blocks[i]));
          element.insertBefore(block, tail);
        }
        pending = parts.tail;
        if (pending !== shownTail) {
          tail.replaceChildren(render(pending));
          shownTail = pending;
        }
      },
    };
  }

  return {
    SOFT_LIMIT: SOFT_LIMIT, HARD_LIMIT: HARD_LIMIT, splitBlocks: splitBlocks, safeCut: safeCut,
    render: render, createView: createView,
  };
});
