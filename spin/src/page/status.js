// The Spin app's status page: refreshes its numbers from /status every few
// seconds. Served by the app itself (no CDN).
(function () {
  'use strict';
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
      document.body.setAttribute('data-updated', new Date().toISOString());
    }).catch(function () {});
  }
  refresh();
  setInterval(refresh, 5000);
})();
