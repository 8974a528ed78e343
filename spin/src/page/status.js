// The Spin app's status page: refreshes its numbers from /status every few
// seconds. Served by the app itself (no CDN).
(function () {
  'use strict';
  // Fills the list `id` with one item per entry (as text, never HTML).
  function list(id, entries, empty, text) {
    var ul = document.getElementById(id);
    ul.textContent = '';
    (entries && entries.length ? entries.map(text) : [empty]).forEach(function (t) {
      var li = document.createElement('li');
      li.textContent = t;
      ul.appendChild(li);
    });
  }
  function refresh() {
    fetch('/status', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) {
      var counts = Object.assign({}, s.calls, { unreadable: s.unreadable, results: s.results });
      Object.keys(counts).forEach(function (state) {
        var cell = document.querySelector('td[data-k="' + state + '"]');
        if (cell) cell.textContent = String(counts[state]);
      });
      var paused = document.getElementById('paused');
      paused.textContent = s.paused ? 'paused: ' + s.paused : 'sending';
      paused.className = s.paused ? 'bad' : 'ok';
      list('problems', s.problems, 'none', function (p) {
        return p.source + ' ' + p.topic + ': ' + p.problem;
      });
      list('write-backs', s.writeBacks, 'none queued', function (w) {
        return w.source + ': ' + w.pending + ' pending, ' + w.done + ' done, ' + w.dead + ' dead' +
          (w.lastError ? ' (last error: ' + w.lastError + ')' : '');
      });
      document.body.setAttribute('data-updated', new Date().toISOString());
    }).catch(function () {});
  }
  refresh();
  setInterval(refresh, 5000);
})();
