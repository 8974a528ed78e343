// The status page's live updates: polls /api/status every few seconds and
// draws its `view` as the server does (host/src/page.rs renders the same
// structure into the first HTML). No library and no request but to the
// bridge; text goes in as text (textContent), never as markup.
(function () {
  'use strict';
  var POLL_MS = 5000;
  var TOKEN_KEY = 'kendo-bridge-operator-token';
  var SVG = 'http://www.w3.org/2000/svg';
  var body = document.body;
  var main = document.getElementById('view');
  var live = document.getElementById('live');
  var generated = document.getElementById('generated');
  var tokenInput = document.getElementById('token');
  var result = document.getElementById('action-result');
  var updates = 0;

  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function cell(tag, c) {
    var e = el(tag, c.text);
    if (c.key) e.setAttribute('data-k', c.key);
    if (c.tone) e.className = c.tone;
    return e;
  }

  function section(s, operator) {
    var sec = el('section', null, { id: s.id });
    var h = el('h2', s.title);
    if (s.summary) { h.appendChild(document.createTextNode(': ')); h.appendChild(cell('span', s.summary)); }
    sec.appendChild(h);
    if (s.note) sec.appendChild(el('p', s.note, { 'class': 'note' }));
    if (s.rows.length === 0) { sec.appendChild(el('p', s.empty, { 'class': 'empty' })); return sec; }
    var actions = operator && s.rows.some(function (r) { return r.action; });
    var table = el('table');
    var head = el('tr');
    s.columns.forEach(function (c) { head.appendChild(el('th', c)); });
    if (actions) head.appendChild(el('th'));
    table.appendChild(el('thead')).appendChild(head);
    var tbody = table.appendChild(el('tbody'));
    s.rows.forEach(function (r) {
      var tr = el('tr');
      r.cells.forEach(function (c) { tr.appendChild(cell('td', c)); });
      if (actions) {
        var td = el('td');
        if (r.action) {
          td.appendChild(el('button', r.action.label, {
            type: 'button', 'data-action': r.action.kind, 'data-body': JSON.stringify(r.action.body)
          }));
        }
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    });
    sec.appendChild(table);
    return sec;
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The same drawing as page.rs's render_chart.
  function chart(c) {
    var W = 600, H = 120;
    var sec = el('section', null, { id: 'chart' });
    sec.appendChild(el('h2', c.title));
    if (c.teams.length === 0) sec.appendChild(el('p', 'no team configured', { 'class': 'empty' }));
    c.teams.forEach(function (s) {
      var top = Math.max(Math.max(s.max, c.limit) * 1.15, 1);
      var n = Math.max(s.perBucket.length, 1);
      var bw = W / n;
      var fig = el('figure');
      var cap = el('figcaption', s.team + ' \u2014 ');
      cap.appendChild(el('span', String(s.total), { 'data-k': 'chart/' + s.team + '/total' }));
      cap.appendChild(document.createTextNode(' request(s), at most '));
      cap.appendChild(el('span', String(s.max), { 'data-k': 'chart/' + s.team + '/max' }));
      cap.appendChild(document.createTextNode(' in one window'));
      fig.appendChild(cap);
      var g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
        'aria-label': 'requests per window for ' + s.team });
      s.perBucket.forEach(function (v, i) {
        var h = v / top * H;
        var r = svg('rect', {
          'class': v > c.limit ? 'bar over' : 'bar',
          x: (i * bw + 0.5).toFixed(1), y: (H - h).toFixed(1),
          width: Math.max(bw - 1, 0.5).toFixed(1), height: h.toFixed(1)
        });
        r.appendChild(svg('title', {}, String(v)));
        g.appendChild(r);
      });
      var y = H - c.limit / top * H;
      g.appendChild(svg('line', { 'class': 'limit', x1: 0, x2: W, y1: y.toFixed(1), y2: y.toFixed(1) }));
      g.appendChild(svg('text', { 'class': 'limit', x: 4, y: Math.max(y - 3, 10).toFixed(1) }, 'limit ' + c.limit));
      fig.appendChild(g);
      sec.appendChild(fig);
    });
    return sec;
  }

  function render(view) {
    var CHART_AFTER = 2; // as page.rs: after the teams and the paused keys
    var frag = document.createDocumentFragment();
    view.sections.forEach(function (s, i) {
      if (i === CHART_AFTER) frag.appendChild(chart(view.chart));
      frag.appendChild(section(s, view.operator));
    });
    if (view.sections.length <= CHART_AFTER) frag.appendChild(chart(view.chart));
    main.replaceChildren(frag);
    generated.textContent = view.generatedAt;
  }

  function refresh() {
    return fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (data) {
        render(data.view);
        updates += 1;
        body.setAttribute('data-updated', data.view.generatedAt);
        body.setAttribute('data-updates', String(updates));
        live.textContent = '(updates itself every ' + POLL_MS / 1000 + ' s)';
      })
      .catch(function (e) {
        live.textContent = '(live update failed: ' + e.message + '; trying again)';
      });
  }

  if (tokenInput) {
    try { tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage off */ }
    tokenInput.addEventListener('input', function () {
      try { sessionStorage.setItem(TOKEN_KEY, tokenInput.value); } catch (e) { /* storage off */ }
    });
  }

  main.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (!b || !tokenInput) return;
    var token = tokenInput.value.trim();
    if (!token) { result.textContent = 'Enter the operator token first.'; tokenInput.focus(); return; }
    b.disabled = true;
    fetch('/api/' + b.getAttribute('data-action'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
      body: b.getAttribute('data-body')
    })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (a) { result.textContent = a.ok ? a.j.message : 'Refused: ' + a.j.error; })
      .catch(function (e) { result.textContent = 'Failed: ' + e.message; })
      .then(refresh);
  });

  refresh();
  setInterval(refresh, POLL_MS);
})();
