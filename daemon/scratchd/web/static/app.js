// scratchd web: the live parts of the server-rendered pages. Plain JavaScript, no build
// step, nothing fetched from elsewhere. Pages work without it; with it the dashboard and
// lists re-render on the change feed and a build's log follows its stream.
"use strict";

// A log line: "<time> <stream> [<pipeline>/<step>: ]<text>" (see the store's log format).
const LINE = /^(\S+) (\S+) (?:([^\s\/:]+)\/(.+?): )?(.*)$/;
const ERROR = /\b(error|failed|fatal|panic)\b/i;

function init() {
  // -- copy-command buttons --------------------------------------------------------
  document.addEventListener("click", function (ev) {
    const button = ev.target.closest && ev.target.closest("button.copy");
    if (!button) return;
    const text = button.dataset.copy;
    const done = function () { button.classList.add("copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(button); });
    } else {
      selectText(button);
    }
  });

  function selectText(node) {
    const range = document.createRange();
    range.selectNodeContents(node.querySelector("code") || node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // -- live lists: re-render <main> when the change feed says something changed ---------
  const live = document.body.dataset.live;
  if (live) {
    let pending = null;
    const source = new EventSource(live);
    source.addEventListener("build", function () {
      if (pending) return;
      pending = setTimeout(refresh, 150);
    });
    // The page also ages (elapsed times, ETAs): refresh now and then without events.
    setInterval(refresh, 10000);
    function refresh() {
      pending = null;
      fetch(location.href, { headers: { "X-Requested-With": "scratchd" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (text === null) return;
          const doc = new DOMParser().parseFromString(text, "text/html");
          const fresh = doc.getElementById("main");
          if (fresh) document.getElementById("main").replaceChildren(...fresh.childNodes);
        })
        .catch(function () {});
    }
  }

  const dataNode = document.getElementById("page-data");
  if (dataNode) window.scratchdLog = new LogView(JSON.parse(dataNode.textContent));
  const lazySteps = document.querySelector("table.steps[data-src]");
  if (lazySteps) loadSteps(lazySteps);
}

// The steps of a big log, fetched after the log's tail is on screen.
function loadSteps(table) {
  fetch(table.dataset.src).then(function (r) { return r.json(); }).then(function (data) {
    const body = document.createElement("tbody");
    data.steps.forEach(function (s) {
      const row = body.insertRow();
      const link = document.createElement("a");
      link.href = "#L" + s.line;
      link.textContent = s.pipeline + "/" + s.name;
      row.insertCell().appendChild(link);
      const status = document.createElement("span");
      status.className = "st st-" + s.status;
      status.textContent = s.status;
      row.insertCell().appendChild(status);
      row.insertCell().textContent = Math.round(s.duration) + "s";
    });
    table.replaceChild(body, table.tBodies[0]);
  }).catch(function () {});
}

// -- ANSI SGR to spans (as HTML text: one innerHTML per batch is far cheaper than nodes) ----
function esc(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function ansiToHtml(text) {
  const re = /\x1b\[([0-9;]*)([A-Za-z])/g;
  let out = "", state = {}, last = 0, m;
  const emit = function (chunk) {
    if (!chunk) return;
    const cls = [], style = [];
    if (state.fg !== undefined) {
      if (typeof state.fg === "number") cls.push("fg" + state.fg); else style.push("color:" + state.fg);
    }
    if (state.bg !== undefined) {
      if (typeof state.bg === "number") cls.push("bg" + state.bg); else style.push("background-color:" + state.bg);
    }
    if (state.bold) cls.push("b");
    if (state.italic) cls.push("i");
    if (state.underline) cls.push("u");
    if (!cls.length && !style.length) { out += esc(chunk); return; }
    out += '<span class="' + cls.join(" ") + '"' + (style.length ? ' style="' + style.join(";") + '"' : "") +
      ">" + esc(chunk) + "</span>";
  };
  while ((m = re.exec(text)) !== null) {
    emit(text.slice(last, m.index));
    last = re.lastIndex;
    if (m[2] !== "m") continue; // cursor movement and the like: dropped
    state = applySgr(state, m[1] === "" ? [0] : m[1].split(";").map(Number));
  }
  emit(text.slice(last).replace(/\x1b/g, ""));
  return out;
}

function applySgr(state, codes) {
  const s = Object.assign({}, state);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) { for (const k in s) delete s[k]; }
    else if (c === 1) s.bold = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) delete s.bold;
    else if (c === 23) delete s.italic;
    else if (c === 24) delete s.underline;
    else if (c >= 30 && c <= 37) s.fg = c - 30;
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
    else if (c === 39) delete s.fg;
    else if (c >= 40 && c <= 47) s.bg = c - 40;
    else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
    else if (c === 49) delete s.bg;
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      s[c === 38 ? "fg" : "bg"] = codes[i + 2] < 16 ? codes[i + 2] : xterm(codes[i + 2]);
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      s[c === 38 ? "fg" : "bg"] = "rgb(" + codes.slice(i + 2, i + 5).join(",") + ")";
      i += 4;
    }
  }
  return s;
}

function xterm(n) {
  if (n >= 232) { const v = 8 + (n - 232) * 10; return "rgb(" + v + "," + v + "," + v + ")"; }
  n -= 16;
  const level = function (x) { return x ? 55 + x * 40 : 0; };
  return "rgb(" + level(Math.floor(n / 36)) + "," + level(Math.floor(n / 6) % 6) + "," + level(n % 6) + ")";
}

// -- the log viewer ------------------------------------------------------------------------

function LogView(data) {
  this.id = data.build;
  this.box = document.getElementById("log");
  this.first = data.first;
  this.last = data.first - 1;
  this.total = data.total;
  this.follow = document.getElementById("follow");
  this.append(data.lines.map(function (text, i) { return [data.first + i, text]; }));
  if (window.performance && performance.mark) {
    // When the tail is in the DOM, and when the frame showing it was painted (a task
    // queued from the frame's callback runs after that frame): what the benchmark reads.
    performance.mark("scratchd-log-shown");
    requestAnimationFrame(function () {
      setTimeout(function () { performance.mark("scratchd-log-painted"); }, 0);
    });
  }
  this.wire();
  this.showHash();
  if (data.running) this.stream();
  this.info();
}

// One line as HTML; ``step`` is set to the line's "<pipeline>/<step>" (or null).
LogView.prototype.lineHtml = function (number, raw, out) {
  const m = LINE.exec(raw);
  const body = m ? m[5] : raw;
  out.step = m && m[3] ? m[3] + "/" + m[4] : null;
  const err = (m && m[2] === "stderr") || ERROR.test(body);
  const hidden = out.step && this.collapsed && this.collapsed[out.step];
  const cls = "line" + (err ? " err" : "") + (hidden ? " hidden" : "");
  return '<div class="' + cls + '" id="L' + number + '"' +
    (out.step ? ' data-step="' + esc(out.step) + '"' : "") +
    '><a class="ln" href="#L' + number + '">' + number + '</a><span class="ts">' +
    (m ? esc(m[1]) + " " : "") + "</span>" + ansiToHtml(body) + "</div>";
};

LogView.prototype.stepHtml = function (step) {
  return '<div class="stephead" data-step="' + esc(step) + '">▾ ' + esc(step) + "</div>";
};

// Lines as HTML (one string per line, a step header glued to the first line of its step).
LogView.prototype.linesHtml = function (pairs, step, keep) {
  const parts = [], out = {};
  for (const [number, text] of pairs) {
    if (!keep(number)) continue;
    const html = this.lineHtml(number, text, out);
    if (out.step && out.step !== step) {
      step = out.step;
      parts.push(this.stepHtml(step) + html);
    } else {
      parts.push(html);
    }
  }
  return { parts: parts, step: step };
};

// Lines live in chunks of CHUNK: the browser skips styling, layout and paint of a chunk
// that is off screen (content-visibility), which costs far less than doing so per line.
const CHUNK = 200;

function chunksHtml(parts) {
  const out = [];
  for (let i = 0; i < parts.length; i += CHUNK) {
    out.push('<div class="chunk">' + parts.slice(i, i + CHUNK).join("") + "</div>");
  }
  return out.join("");
}

LogView.prototype.append = function (pairs) {
  const self = this;
  const fresh = pairs.filter(function (p) { return p[0] > self.last; }); // never twice
  if (!fresh.length) return;
  const done = this.linesHtml(fresh, this.lastStep, function () { return true; });
  const parts = done.parts;
  const tail = this.box.lastElementChild;
  const room = tail ? CHUNK - tail.childElementCount : 0;
  if (room > 0) tail.insertAdjacentHTML("beforeend", parts.slice(0, room).join(""));
  if (parts.length > Math.max(room, 0)) {
    this.box.insertAdjacentHTML("beforeend", chunksHtml(parts.slice(Math.max(room, 0))));
  }
  this.lastStep = done.step;
  this.last = fresh[fresh.length - 1][0];
  this.total = Math.max(this.total, this.last);
  if (this.follow && this.follow.checked) this.toBottom();
  this.info();
};

LogView.prototype.prepend = function (first, lines) {
  const self = this;
  const pairs = lines.map(function (text, i) { return [first + i, text]; });
  const done = this.linesHtml(pairs, null, function (n) { return n < self.first; });
  this.box.insertAdjacentHTML("afterbegin", chunksHtml(done.parts));
  this.first = Math.min(this.first, first);
  this.info();
};

LogView.prototype.info = function () {
  const node = document.getElementById("log-info");
  if (node) node.textContent = this.last >= this.first
    ? "lines " + this.first + "–" + this.last + " of " + this.total : "no log yet";
  const earlier = document.getElementById("load-earlier");
  if (earlier) earlier.disabled = this.first <= 1;
};

LogView.prototype.fetchRange = function (start, end) {
  return fetch("/builds/" + this.id + "/log.json?start=" + start + "&end=" + end)
    .then(function (r) { return r.json(); });
};

LogView.prototype.loadEarlier = function (down_to) {
  if (this.first <= 1) return Promise.resolve();
  const end = this.first - 1;
  const start = Math.max(1, Math.min(down_to || end, end - 1999));
  const self = this;
  return this.fetchRange(start, end).then(function (d) { self.prepend(d.first, d.lines); });
};

LogView.prototype.toBottom = function () {
  window.scrollTo(0, document.documentElement.scrollHeight);
};

LogView.prototype.wire = function () {
  const self = this;
  let lastY = window.scrollY;
  window.addEventListener("scroll", function () {
    // Scrolling up, away from the bottom, detaches follow mode; our own scrolls only go
    // down. Off-screen chunks taking their real height when drawn move the page a little
    // (scroll anchoring), never away from the bottom: that is not the reader.
    const up = window.scrollY < lastY - 2;
    lastY = window.scrollY;
    if (!up || !self.follow || !self.follow.checked) return;
    const below = document.documentElement.scrollHeight - window.scrollY - window.innerHeight;
    if (below > 48) self.follow.checked = false;
  });
  if (this.follow) this.follow.addEventListener("change", function () {
    if (self.follow.checked) self.toBottom();
  });
  // A chunk drawn for the first time after the scroll takes its real height instead of
  // the estimate it was laid out with, which moves the bottom away from a page that
  // follows; keep it there whenever the log's size changes.
  if (this.follow && window.ResizeObserver) new ResizeObserver(function () {
    if (self.follow.checked) self.toBottom();
  }).observe(this.box);
  document.getElementById("show-ts").addEventListener("change", function (ev) {
    self.box.classList.toggle("show-ts", ev.target.checked);
  });
  document.getElementById("load-earlier").addEventListener("click", function () {
    self.loadEarlier();
  });
  this.collapsed = {};
  this.box.addEventListener("click", function (ev) {
    const head = ev.target.closest(".stephead");
    if (head) {
      const step = head.dataset.step;
      self.collapsed[step] = !self.collapsed[step];
      head.classList.toggle("collapsed", self.collapsed[step]);
      self.box.querySelectorAll(".line").forEach(function (line) {
        if (line.dataset.step === step) line.classList.toggle("hidden", self.collapsed[step]);
      });
      return;
    }
    const ln = ev.target.closest("a.ln");
    if (ln && ev.shiftKey && self.anchor) {
      ev.preventDefault();
      const n = Number(ln.textContent);
      location.hash = "#L" + Math.min(self.anchor, n) + "-" + Math.max(self.anchor, n);
    }
  });
  window.addEventListener("hashchange", function () { self.showHash(); });
};

LogView.prototype.showHash = function () {
  const m = /^#L(\d+)(?:-(\d+))?$/.exec(location.hash);
  if (!m) return;
  const a = Number(m[1]), b = Number(m[2] || m[1]);
  this.anchor = a;
  if (this.follow) this.follow.checked = false;
  const self = this;
  const ready = a < this.first ? this.fetchRange(a, this.first - 1)
    .then(function (d) { self.prepend(d.first, d.lines); }) : Promise.resolve();
  ready.then(function () {
    self.box.querySelectorAll(".line.hl").forEach(function (n) { n.classList.remove("hl"); });
    for (let n = a; n <= b; n++) {
      const node = document.getElementById("L" + n);
      if (node) node.classList.add("hl");
    }
    const target = document.getElementById("L" + a);
    if (target) target.scrollIntoView({ block: "center" });
  });
};

LogView.prototype.stream = function () {
  const self = this;
  const source = new EventSource("/builds/" + this.id + "/log/events?after=" + this.last);
  source.onmessage = function (ev) {
    const number = Number(ev.lastEventId);
    if (number <= self.last) return;
    if (number > self.last + 1) { // a gap (never expected): fill it from the file
      const from = self.last + 1;
      self.fetchRange(from, number - 1).then(function (d) {
        self.append(d.lines.map(function (t, i) { return [d.first + i, t]; }));
        self.append([[number, ev.data]]);
      });
      return;
    }
    self.append([[number, ev.data]]);
  };
  source.addEventListener("end", function (ev) {
    source.close();
    const status = document.getElementById("build-status");
    if (status) status.innerHTML = '<span class="st st-' + ev.data + '">' + ev.data + "</span>";
    document.body.dataset.finished = ev.data;
  });
  this.source = source;
};

// Last, once every prototype method above exists.
init();
