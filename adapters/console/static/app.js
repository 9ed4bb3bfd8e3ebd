// The console: pages over the REST API, routed by the URL's fragment (#/, #/gpu/<uuid>,
// #/health, #/problems, #/efficiency, #/usage, #/workloads). Each page renders into <main> and returns what stops its timers.
'use strict';

(() => {
  const main = document.getElementById('main');
  const status = document.getElementById('status');

  // What tests and curious users can read off a page: its name, the charts it drew by
  // metric, and how many times the heatmap was refreshed.
  const state = window.telemetryConsole = { page: '', charts: {}, refreshes: 0, ready: false };

  const HEATMAP_REFRESH = 5000;
  const SUMMARY_REFRESH = 30000;
  const RAW_LIMIT = 3600 * 1000; // windows up to an hour are charted sample by sample
  const CHART_POINTS = 600; // longer ones as this many averages per metric

  const FIELDS = {
    DCGM_FI_DEV_GPU_UTIL: { label: 'Utilisation', unit: '%', min: 0, max: 100 },
    DCGM_FI_DEV_GPU_TEMP: { label: 'Temperature', unit: '°C', min: 20, max: 95 },
    DCGM_FI_DEV_POWER_USAGE: { label: 'Power', unit: 'W', min: 0, max: 700 },
    DCGM_FI_DEV_FB_USED: { label: 'Memory used', unit: 'MiB', min: 0, max: 81920 },
  };

  // --- helpers -------------------------------------------------------------------------

  const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  function el(html) {
    const t = document.createElement('template');
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // api fetches a route of the REST API relative to the console, its parameters in an
  // object (arrays repeat), and returns the decoded JSON or throws the API's message.
  async function api(path, params = {}, signal) {
    const url = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params)) {
      for (const one of [].concat(v)) {
        if (one !== undefined && one !== null && one !== '') url.searchParams.append(k, one);
      }
    }
    const res = await fetch(url, { headers: { Accept: 'application/json' }, signal });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body?.error?.message || `${res.status} ${res.statusText}`);
    return body;
  }

  const iso = (t) => new Date(t).toISOString().replace('.000Z', 'Z');
  const shortTime = (t) => (t ? iso(t).replace(/\.\d+Z$/, 'Z').replace('T', ' ') : '–');
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const deviceKey = (d) => (d.gpu_instance ? `${d.uuid}/${d.gpu_instance}` : d.uuid);
  const deviceHref = (d) => `#/gpu/${encodeURIComponent(d.uuid)}${d.gpu_instance ? '/' + encodeURIComponent(d.gpu_instance) : ''}`;
  // clip shows a name that may be long (hosts, pods, labels) cut with an ellipsis, whole on hover.
  const clip = (text) => `<span class="clip" title="${esc(text)}">${esc(text)}</span>`;
  const migName = (d) => (d.gpu_instance ? ` · MIG ${esc(d.gpu_instance)}${d.gpu_instance_profile ? ' (' + esc(d.gpu_instance_profile) + ')' : ''}` : '');
  const deviceName = (d) => `${clip(d.hostname || '')} · GPU ${esc(d.gpu_index)}${migName(d)}`;

  function fmt(v, digits = 1) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    return Number(v).toLocaleString('en-US', { maximumFractionDigits: digits });
  }

  function duration(ms) {
    const m = Math.round(ms / 60000);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  }

  // parseDuration reads 15m, 1h, 6h, 24h, 7d.
  function parseDuration(s) {
    const m = /^(\d+)([smhd])$/.exec(s || '');
    if (!m) return null;
    return Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
  }

  // windowOf is the window a page's parameters name: start and end (RFC 3339), or range
  // back from now.
  function windowOf(params, fallback) {
    const end = params.get('end') ? Date.parse(params.get('end')) : Date.now();
    const span = parseDuration(params.get('range') || fallback);
    const start = params.get('start') ? Date.parse(params.get('start')) : end - span;
    return { start, end, live: !params.get('end'), range: params.get('range') || (params.get('start') ? '' : fallback) };
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle('error', !!isError);
    if (!isError) document.getElementById('page-error')?.remove();
  }

  // showError says what went wrong in the header, and above the page while it has not
  // drawn what it loads.
  function showError(err) {
    if (err.name === 'AbortError') return;
    setStatus(err.message, true);
    if (!state.ready) {
      let box = document.getElementById('page-error');
      if (!box) {
        box = el('<div class="error-box" id="page-error" role="alert"></div>');
        main.prepend(box);
      }
      box.textContent = err.message;
    }
  }

  // every runs fn now and then every ms while the page is open, one run at a time, skipping
  // runs while the tab is hidden; it returns what stops it.
  function every(ms, fn) {
    let timer, stopped = false;
    const tick = async () => {
      if (!document.hidden) {
        try { await fn(); } catch (err) { showError(err); }
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  function rangeLinks(base, params, ranges, current) {
    return `<span class="ranges">${ranges.map((r) => {
      const p = new URLSearchParams(params);
      p.delete('start'); p.delete('end'); p.set('range', r);
      return `<a href="${base}?${p}" class="${r === current ? 'active' : ''}">${r}</a>`;
    }).join('')}</span>`;
  }

  // submitTo makes a form's fields the parameters of route, on top of params.
  function submitTo(form, route, params) {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const p = new URLSearchParams(params);
      for (const [k, v] of new FormData(form)) p.set(k, v);
      location.hash = `${route}?${p}`;
    });
  }

  // --- colour --------------------------------------------------------------------------

  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis

  function colour(t) {
    t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(t));
    const f = t - i;
    const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
    return `rgb(${c})`;
  }
  const gradient = `linear-gradient(90deg, ${STOPS.map((c) => `rgb(${c})`).join(', ')})`;

  // --- fleet ---------------------------------------------------------------------------

  function fleetPage(params) {
    const metric = FIELDS[params.get('metric')] ? params.get('metric') : 'DCGM_FI_DEV_GPU_UTIL';
    main.innerHTML = `
      <h1>Fleet</h1>
      <div class="cards" id="cards"></div>
      <div class="toolbar">
        <label>Colour by <select id="metric">${Object.entries(FIELDS).map(([m, f]) =>
          `<option value="${m}" ${m === metric ? 'selected' : ''}>${f.label} (${f.unit})</option>`).join('')}</select></label>
        <span class="legend"><span id="lo"></span><span class="bar" style="background:${gradient}"></span><span id="hi"></span></span>
        <span class="muted" id="updated"></span>
      </div>
      <div class="heatmap" id="heatmap"></div>
      <div class="keys">
        <span><span class="cell unhealthy"></span> health events in the last hour</span>
        <span><span class="cell idle"></span> idle while a pod holds it (30 min or more)</span>
        <span><span class="cell empty"></span> no sample in 5 min</span>
      </div>`;
    main.querySelector('#metric').addEventListener('change', (e) => {
      location.hash = `#/?metric=${e.target.value}`;
    });
    const heatmap = main.querySelector('#heatmap');
    const cells = new Map(); // device key → element
    let flagged = { unhealthy: new Set(), idle: new Set() };

    function layout(devices) {
      const hosts = new Map();
      for (const d of devices) {
        if (!hosts.has(d.hostname)) hosts.set(d.hostname, []);
        hosts.get(d.hostname).push(d);
      }
      heatmap.replaceChildren();
      cells.clear();
      for (const [host, list] of hosts) {
        const row = el(`<div class="row"><a class="host" href="#/health?hostname=${encodeURIComponent(host)}" title="${esc(host)}">${esc(host)}</a><div class="cells"></div></div>`);
        let next = 0; // a missing index leaves its place empty, so columns line up
        for (const d of list) {
          for (; next < d.gpu_index; next++) row.lastElementChild.append(el('<span class="cell gap"></span>'));
          next = d.gpu_index + 1;
          const cell = el(`<a class="cell" href="${deviceHref(d)}" data-key="${esc(deviceKey(d))}">${esc(d.gpu_instance ? d.gpu_index + '·' + d.gpu_instance : d.gpu_index)}</a>`);
          cells.set(deviceKey(d), cell);
          row.lastElementChild.append(cell);
        }
        heatmap.append(row);
      }
    }

    let devices = [];

    async function refresh() {
      const page = await api('api/v1/fleet/latest', { metric });
      devices = page.data;
      if (devices.length !== cells.size || devices.some((d) => !cells.has(deviceKey(d)))) layout(devices);
      paint();
      state.refreshes++;
      heatmap.dataset.refreshes = state.refreshes;
      // A page holds 10,000 GPUs at most: a larger fleet is said to be cut, never shown as whole.
      const cut = page.next_cursor ? ' (the first 10,000 GPUs of a larger fleet)' : '';
      main.querySelector('#updated').textContent = `${devices.length} devices${cut} · updated ${new Date().toLocaleTimeString()}`;
      setStatus('');
      state.ready = true;
    }

    // paint colours the cells by the latest values and marks the flagged devices.
    function paint() {
      const f = FIELDS[metric];
      const max = Math.max(f.max, ...devices.map((d) => d.value ?? 0));
      main.querySelector('#lo').textContent = `${f.min} ${f.unit}`;
      main.querySelector('#hi').textContent = `${fmt(max, 0)} ${f.unit}`;
      for (const d of devices) {
        const cell = cells.get(deviceKey(d));
        const has = d.value !== undefined && d.value !== null;
        cell.classList.toggle('empty', !has);
        const t = (d.value - f.min) / (max - f.min);
        cell.style.background = has ? colour(t) : '';
        cell.classList.toggle('light', has && t > 0.6);
        cell.classList.toggle('unhealthy', flagged.unhealthy.has(deviceKey(d)));
        cell.classList.toggle('idle', flagged.idle.has(deviceKey(d)));
        cell.title = `${d.hostname} · GPU ${d.gpu_index} · ${d.model_name}\n${f.label}: ${has ? fmt(d.value) + ' ' + f.unit + ' at ' + shortTime(d.timestamp) : 'no sample in 5 min'}\n${deviceKey(d)}`;
      }
    }

    async function summary() {
      const end = new Date(), start = new Date(end - 36e5);
      const window = { start_time: iso(start), end_time: iso(end) };
      const [stats, idle, events] = await Promise.all([
        api('api/v1/stats'),
        api('api/v1/fleet/idle', { ...window, threshold: 5, for: '30m' }),
        api('api/v1/events', window),
      ]);
      const idleHeld = new Set(idle.data.filter((e) => e.reason === 'allocated').map(deviceKey));
      const idleFree = new Set(idle.data.filter((e) => e.reason !== 'allocated').map(deviceKey));
      const unhealthy = new Set(events.data.map(deviceKey));
      flagged = { unhealthy, idle: idleHeld };
      main.querySelector('#cards').innerHTML = [
        ['GPUs', stats.unique_gpus, ''], ['hosts', stats.unique_hosts, ''],
        ['idle in the last hour, held by a pod', idleHeld.size, idleHeld.size ? 'warn' : ''],
        ['idle in the last hour, unallocated', idleFree.size, ''],
        ['with health events in the last hour', unhealthy.size, unhealthy.size ? 'bad' : ''],
        ['samples stored', fmt(stats.total_records, 0), ''],
      ].map(([label, n, cls]) => `<a class="card ${cls}" href="#/health?range=1h"><div class="n">${n}</div><div class="label">${label}</div></a>`).join('');
      paint();
    }

    const stops = [every(SUMMARY_REFRESH, summary), every(HEATMAP_REFRESH, refresh)];
    return () => stops.forEach((stop) => stop());
  }

  // --- device --------------------------------------------------------------------------

  function devicePage(params, uuid, instance) {
    const win = windowOf(params, '1h');
    const key = instance ? { gpu_instance: instance } : {};
    const base = `#/gpu/${encodeURIComponent(uuid)}${instance ? '/' + encodeURIComponent(instance) : ''}`;
    main.innerHTML = `<h1 id="title">${esc(uuid)}</h1><dl class="facts" id="facts"></dl>
      <div class="toolbar">${rangeLinks(base, params, ['15m', '1h', '6h', '24h', '7d'], win.range)}
        <span class="muted" id="window"></span></div>
      <div id="events"></div><div class="charts" id="charts"></div>`;
    const abort = new AbortController();
    let charts = [];

    async function load() {
      const w = win.live ? { start: Date.now() - (win.end - win.start), end: Date.now() } : win;
      const range = { start_time: iso(w.start), end_time: iso(w.end) };
      const gpu = await api(`api/v1/gpus/${encodeURIComponent(uuid)}`, key, abort.signal);
      // A MIG-partitioned GPU may report only through its instances: none of its own to read.
      const partitioned = Boolean(gpu.only_instances);
      const [catalogue, events, series] = await Promise.all([
        api('api/v1/metrics', {}, abort.signal),
        api('api/v1/events', { uuid, ...range }, abort.signal),
        partitioned ? { byMetric: new Map() } : samples(range, w),
      ]);
      main.querySelector('#title').innerHTML = deviceName(gpu);
      const mig = gpu.gpu_instance
        ? [['MIG instance', `GPU instance ${esc(gpu.gpu_instance)}${gpu.gpu_instance_profile ? ', profile ' + esc(gpu.gpu_instance_profile) : ''}`],
          ['of GPU', `<a class="parent" href="${deviceHref({ uuid: gpu.uuid })}">${esc(gpu.uuid)}</a>`]]
        : (gpu.mig_instances || []).length
          ? [['MIG instances', `<span class="instances">${gpu.mig_instances.map((i) =>
            `<a href="${deviceHref(i)}">${esc(i.gpu_instance)}${i.gpu_instance_profile ? ' (' + esc(i.gpu_instance_profile) + ')' : ''}</a>`).join(' · ')}</span>`]]
          : [];
      main.querySelector('#facts').innerHTML = [
        ['UUID', esc(deviceKey(gpu))], ...mig, ['model', esc(gpu.model_name)], ['driver', esc(gpu.driver_version)],
        ['seen', `${shortTime(gpu.first_seen)} – ${shortTime(gpu.last_seen)}`],
        ...Object.entries(gpu.labels || {}).map(([k, v]) => [esc(k), clip(v)]),
      ].map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
      main.querySelector('#window').textContent = `${shortTime(w.start)} – ${shortTime(w.end)}` +
        (series.step ? ` · averages over ${series.step}` : ' · every sample');
      const own = events.data.filter((e) => deviceKey(e) === deviceKey(gpu));
      main.querySelector('#events').innerHTML = own.length ? `<h2>Health events</h2>${eventTable(own, false)}` : '';
      draw(series.byMetric, catalogue.data, own, w, partitioned);
      setStatus('');
      state.ready = true;
    }

    // samples reads the window's samples of every metric: one by one for an hour or
    // less (following the cursor), as averages over steps for longer windows.
    async function samples(range, w) {
      const byMetric = new Map();
      const add = (metric, t, v) => {
        if (!byMetric.has(metric)) byMetric.set(metric, [[], []]);
        const s = byMetric.get(metric);
        s[0].push(Date.parse(t) / 1000);
        s[1].push(v ?? null);
      };
      if (w.end - w.start <= RAW_LIMIT) {
        let cursor;
        do {
          const page = await api(`api/v1/gpus/${encodeURIComponent(uuid)}/telemetry`, { ...key, ...range, limit: 1000, cursor }, abort.signal);
          for (const s of page.data) add(s.metric, s.timestamp, s.value);
          cursor = page.next_cursor;
        } while (cursor);
        return { byMetric };
      }
      // A step of whole 5 minutes or hours is read from the store's downsampled tiers.
      let secs = Math.max(1, Math.ceil((w.end - w.start) / 1000 / CHART_POINTS));
      if (secs >= 3600) secs = Math.ceil(secs / 3600) * 3600;
      else if (secs >= 300) secs = Math.ceil(secs / 300) * 300;
      const step = `${secs}s`;
      const agg = await api(`api/v1/gpus/${encodeURIComponent(uuid)}/telemetry/aggregate`, { ...key, ...range, step, agg: 'avg' }, abort.signal);
      for (const b of agg.data) add(b.metric, b.bucket_start, b.value);
      return { byMetric, step };
    }

    function draw(byMetric, catalogue, events, w, partitioned) {
      charts.forEach((u) => u.destroy());
      charts = [];
      state.charts = {};
      const box = main.querySelector('#charts');
      box.replaceChildren();
      if (!byMetric.size) {
        box.innerHTML = partitioned
          ? '<p class="muted">No samples of the GPU itself in this window: its MIG instances report (linked above).</p>'
          : '<p class="muted">No samples in this window.</p>';
        return;
      }
      const info = new Map(catalogue.map((m) => [m.name, m]));
      const marks = eventBands(events);
      for (const metric of [...byMetric.keys()].sort()) {
        const m = info.get(metric) || {};
        const fig = el(`<figure data-metric="${esc(metric)}"><figcaption><b>${esc(metric)}</b>${m.unit ? ' (' + esc(m.unit) + ')' : ''}<span class="muted">${esc(m.description || '')}</span></figcaption><div></div></figure>`);
        box.append(fig);
        const width = Math.max(300, fig.clientWidth - 16);
        const u = new uPlot({
          width, height: 170,
          cursor: { sync: { key: 'device' } },
          legend: { show: false },
          scales: { x: { time: true, range: [w.start / 1000, w.end / 1000] } },
          axes: [{ space: 70 }, { size: 50, values: (_, ticks) => ticks.map((v) => compact.format(v)) }],
          series: [{}, { label: metric, stroke: '#2a6df4', width: 1.5, fill: 'rgba(42,109,244,0.08)', spanGaps: false, points: { show: false } }],
          hooks: { drawClear: [marks] },
        }, byMetric.get(metric), fig.lastElementChild);
        charts.push(u);
        state.charts[metric] = u;
      }
    }

    const stop = win.live ? every(30000, load) : (load().catch(showError), () => {});
    return () => { stop(); abort.abort(); charts.forEach((u) => u.destroy()); };
  }

  // eventBands shades each event's span on a chart.
  function eventBands(events) {
    return (u) => {
      const { ctx, bbox } = u;
      ctx.save();
      for (const e of events) {
        const x0 = u.valToPos(Date.parse(e.start) / 1000, 'x', true);
        const x1 = u.valToPos(Date.parse(e.end) / 1000, 'x', true);
        ctx.fillStyle = e.kind === 'throttle' ? 'rgba(220,104,3,0.15)' : 'rgba(217,45,32,0.18)';
        ctx.fillRect(Math.max(bbox.left, x0), bbox.top, Math.max(2, Math.min(bbox.left + bbox.width, x1) - Math.max(bbox.left, x0)), bbox.height);
      }
      ctx.restore();
    };
  }

  function eventTable(events, withDevice = true) {
    const rows = events.map((e) => `<tr data-key="${esc(deviceKey(e))}" data-kind="${esc(e.kind)}">
      ${withDevice ? `<td><a href="${deviceHref(e)}">${deviceName(e)}</a></td><td class="muted">${esc(deviceKey(e))}</td>` : ''}
      <td><span class="tag ${e.kind === 'idle' ? 'warn' : 'bad'}">${esc(e.kind)}</span></td><td>${esc(e.reason)}</td>
      <td class="start">${shortTime(e.start)}</td><td class="end">${e.ongoing ? '<i>ongoing</i>' : shortTime(e.end)}</td>
      <td class="num">${duration(Date.parse(e.end) - Date.parse(e.start))}</td>
      <td>${e.pod ? clip(e.namespace + '/' + e.pod) : '<span class="muted">–</span>'}</td><td class="num">${fmt(e.value)}</td></tr>`);
    return `<table><thead><tr>${withDevice ? '<th>device</th><th>key</th>' : ''}<th>kind</th><th>reason</th><th>start</th><th>end</th>
      <th class="num">for</th><th>pod</th><th class="num">value</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  }

  // --- idle and unhealthy --------------------------------------------------------------

  function healthPage(params) {
    const win = windowOf(params, '24h');
    const threshold = params.get('threshold') || '5';
    const forSpan = params.get('for') || '30m';
    const hostname = params.get('hostname') || '';
    main.innerHTML = `<h1>Idle and unhealthy GPUs${hostname ? ' on ' + esc(hostname) : ''}</h1>
      <form class="toolbar" id="form">${rangeLinks('#/health', params, ['1h', '6h', '24h', '7d'], win.range)}
        <label>idle under <input name="threshold" value="${esc(threshold)}" size="3"> %</label>
        <label>for <input name="for" value="${esc(forSpan)}" size="4"></label>
        <button>Apply</button><span class="muted" id="window"></span></form>
      <h2>Idle <span class="muted" id="idle-count"></span></h2><div id="idle"><p class="muted">Loading…</p></div>
      <h2>Health events <span class="muted" id="event-count"></span></h2><div id="events"><p class="muted">Loading…</p></div>`;
    submitTo(main.querySelector('#form'), '#/health', params);
    const abort = new AbortController();
    async function load() {
      const w = win.live ? { start: Date.now() - (win.end - win.start), end: Date.now() } : win;
      const range = { start_time: iso(w.start), end_time: iso(w.end), hostname };
      const [idle, events] = await Promise.all([
        api('api/v1/fleet/idle', { ...range, threshold, for: forSpan }, abort.signal),
        api('api/v1/events', range, abort.signal),
      ]);
      main.querySelector('#window').textContent = `${shortTime(w.start)} – ${shortTime(w.end)}`;
      const held = idle.data.filter((e) => e.reason === 'allocated').length;
      main.querySelector('#idle-count').textContent = `${plural(idle.count, 'span')} on ${plural(idle.devices, 'device')}, ${held} while a pod held the device`;
      main.querySelector('#idle').innerHTML = idle.count ? eventTable(idle.data) : '<p class="muted">None.</p>';
      main.querySelector('#event-count').textContent = `${events.count} on ${plural(events.devices, 'device')}`;
      main.querySelector('#events').innerHTML = events.count ? eventTable(events.data) : '<p class="muted">None.</p>';
      setStatus('');
      state.ready = true;
    }
    const stop = win.live ? every(SUMMARY_REFRESH, load) : (load().catch(showError), () => {});
    return () => { stop(); abort.abort(); };
  }

  // --- problems: open faults by action, outliers, fields not reported --------------------

  const ACTIONS = ['isolate', 'reboot_node', 'reset_gpu', 'restart_app'];
  const ACTION_NAMES = { isolate: 'Take out of service (RMA)', reboot_node: 'Reboot the node', reset_gpu: 'Reset the GPU', restart_app: 'Restart the application' };

  function problemsPage(params) {
    const win = windowOf(params, '24h');
    main.innerHTML = `<h1>Problems</h1>
      <form class="toolbar" id="form">${rangeLinks('#/problems', params, ['1h', '6h', '24h', '7d'], win.range)}
        <span class="muted" id="window"></span></form>
      <h2>Open problems, by what to do <span class="muted" id="open-count"></span></h2><div id="open"><p class="muted">Loading…</p></div>
      <h2>Odd ones out <span class="muted" id="outlier-count"></span></h2>
      <p class="muted">Each GPU's error rates, throttling and heat ranked against its model's and its host's GPUs (a robust score: how many robust standard deviations above their median).</p>
      <div id="outliers"><p class="muted">Loading…</p></div>
      <h2>Fields not reported <span class="muted" id="gap-count"></span></h2>
      <p class="muted">A field a GPU does not send, or sends as 0 where 0 means it does not: read as "not reported here", never as idle or healthy.</p>
      <div id="gaps"><p class="muted">Loading…</p></div>`;
    const abort = new AbortController();
    async function load() {
      const w = win.live ? { start: Date.now() - (win.end - win.start), end: Date.now() } : win;
      const range = { start_time: iso(w.start), end_time: iso(w.end) };
      const [open, outliers, fields] = await Promise.all([
        api('api/v1/events', { ...range, open: 'true', action: ACTIONS }, abort.signal),
        api('api/v1/fleet/outliers', range, abort.signal),
        api('api/v1/fleet/fields', range, abort.signal),
      ]);
      main.querySelector('#window').textContent = `${shortTime(w.start)} – ${shortTime(w.end)}`;
      main.querySelector('#open-count').textContent = `${open.count} on ${plural(open.devices, 'device')}`;
      main.querySelector('#open').innerHTML = open.count ? ACTIONS.filter((a) => open.data.some((e) => e.action === a)).map((a) =>
        `<h3 data-action="${a}">${esc(ACTION_NAMES[a])}</h3><table><thead><tr><th>device</th><th>kind</th><th>reason</th><th>what</th>
        <th>class</th><th>since</th><th>last seen</th><th class="num">count</th></tr></thead><tbody>${open.data.filter((e) => e.action === a).map((e) =>
          `<tr data-key="${esc(deviceKey(e))}" data-kind="${esc(e.kind)}" data-action="${esc(e.action)}"><td><a href="${deviceHref(e)}">${deviceName(e)}</a></td>
          <td><span class="tag bad">${esc(e.kind)}</span></td><td>${esc(e.reason)}</td><td>${clip(e.detail)}</td><td>${esc(e.class)}</td>
          <td>${shortTime(e.start)}</td><td>${shortTime(e.last_seen)}</td><td class="num">${fmt(e.count, 0)}</td></tr>`).join('')}</tbody></table>`).join('')
        : '<p class="muted">None: no event still going on asks for an action.</p>';
      main.querySelector('#outlier-count').textContent = plural(outliers.count, 'GPU signal');
      main.querySelector('#outliers').innerHTML = outliers.count ? `<table><thead><tr><th>device</th><th>signal</th><th class="num">value</th>
        <th class="num">peers' median</th><th>peers</th><th class="num">score</th></tr></thead><tbody>${outliers.data.map((o) =>
          `<tr data-key="${esc(o.uuid)}" data-signal="${esc(o.signal)}"><td><a href="${deviceHref(o)}">${deviceName(o)}</a></td><td>${esc(o.signal)}</td>
          <td class="num">${fmt(o.value, 3)} ${esc(o.unit)}</td><td class="num">${fmt(o.median, 3)}</td>
          <td>${plural(o.peers, 'GPU')} of its ${esc(o.group)} (${clip(o.peer)})</td><td class="num bad">${compact.format(o.score)}</td></tr>`).join('')}</tbody></table>`
        : '<p class="muted">None: no GPU stands out of its peers.</p>';
      const gaps = fields.devices.filter((d) => d.gaps.length);
      main.querySelector('#gap-count').textContent = `on ${plural(gaps.length, 'device')}`;
      main.querySelector('#gaps').innerHTML = gaps.length ? `<table><thead><tr><th>device</th><th>model</th><th>field</th><th>status</th>
        <th class="num">peers that report it</th></tr></thead><tbody>${gaps.flatMap((d) => d.gaps.map((g) =>
          `<tr data-key="${esc(deviceKey(d))}" data-field="${esc(g.field)}"><td><a href="${deviceHref(d)}">${deviceName(d)}</a></td><td>${clip(d.model_name)}</td>
          <td>${esc(g.field)}</td><td><span class="tag warn">${esc(g.status.replaceAll('_', ' '))}</span></td><td class="num">${g.peers}</td></tr>`)).join('')}</tbody></table>`
        : '<p class="muted">None: every GPU reports what its kind reports.</p>';
      setStatus('');
      state.ready = true;
    }
    const stop = win.live ? every(SUMMARY_REFRESH, load) : (load().catch(showError), () => {});
    return () => { stop(); abort.abort(); };
  }

  // --- efficiency ----------------------------------------------------------------------

  const EFFICIENCY_COLUMNS = [
    ['DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'graphics engine'], ['DCGM_FI_PROF_SM_ACTIVE', 'SM active'], ['DCGM_FI_PROF_SM_OCCUPANCY', 'SM occupancy'], ['DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'tensor'],
    ['DCGM_FI_PROF_PIPE_FP16_ACTIVE', 'FP16'], ['DCGM_FI_PROF_PIPE_FP32_ACTIVE', 'FP32'], ['DCGM_FI_PROF_PIPE_FP64_ACTIVE', 'FP64'],
    ['DCGM_FI_PROF_DRAM_ACTIVE', 'DRAM'], ['DCGM_FI_PROF_PCIE_RX_BYTES', 'PCIe in'], ['DCGM_FI_PROF_PCIE_TX_BYTES', 'PCIe out'],
    ['DCGM_FI_PROF_NVLINK_RX_BYTES', 'NVLink in'], ['DCGM_FI_PROF_NVLINK_TX_BYTES', 'NVLink out'],
  ];
  const CLASS_TAGS = { active: '', held_no_kernels: 'bad', memory_held_compute_idle: 'warn', not_reported: '', idle: '' };

  function efficiencyPage(params) {
    const win = windowOf(params, '24h');
    const by = params.get('by') || 'pod';
    main.innerHTML = `<h1>Efficiency</h1>
      <form class="toolbar" id="form">${rangeLinks('#/efficiency', params, ['1h', '6h', '24h', '7d', '30d'], win.range)}
        <label>by <select name="by">${['pod', 'namespace', 'host', 'model', 'gpu'].map((b) =>
          `<option ${b === by ? 'selected' : ''}>${b}</option>`).join('')}</select></label>
        <button>Apply</button><span class="muted" id="window"></span></form>
      <p class="muted">Each profiling field over the time the GPUs were held, as a share of the model's peak (%); <i>n/r</i>: not reported by this exporter, never read as 0.</p>
      <div id="report"><p class="muted">Loading…</p></div>`;
    submitTo(main.querySelector('#form'), '#/efficiency', params);
    const abort = new AbortController();
    (async () => {
      const report = await api('api/v1/fleet/efficiency', { start_time: iso(win.start), end_time: iso(win.end), by }, abort.signal);
      main.querySelector('#window').textContent = `${shortTime(win.start)} – ${shortTime(win.end)}`;
      for (const w of report.warnings || []) {
        main.querySelector('#report').before(el(`<p class="warning" role="note">${esc(w)}</p>`));
      }
      const share = (e, f) => (e.fields[f] ? fmt(e.fields[f].share * 100) : '<span class="muted" title="not reported">n/r</span>');
      main.querySelector('#report').innerHTML = report.count ? `<table><thead><tr><th>${esc(by)}</th><th>class</th><th class="num">GPU-hours</th>
        ${EFFICIENCY_COLUMNS.map(([, name]) => `<th class="num">${name}</th>`).join('')}<th class="num">peak memory (MiB)</th></tr></thead>
        <tbody>${report.data.map((e) => `<tr data-group="${esc(e.group)}" data-class="${esc(e.class)}">
          <td>${e.group ? clip(e.group) : '<i class="muted">no workload</i>'}</td>
          <td><span class="tag ${CLASS_TAGS[e.class] || ''}">${esc(e.class.replaceAll('_', ' '))}</span></td>
          <td class="num">${fmt(e.gpu_hours, 2)}</td>${EFFICIENCY_COLUMNS.map(([f]) => `<td class="num">${share(e, f)}</td>`).join('')}
          <td class="num">${fmt(e.peak_memory_mib, 0)}</td></tr>`).join('')}</tbody></table>`
        : '<p class="muted">No samples in this window.</p>';
      setStatus('');
      state.ready = true;
    })().catch(showError);
    return () => abort.abort();
  }

  // --- usage ---------------------------------------------------------------------------

  function usagePage(params) {
    const win = windowOf(params, '24h');
    const by = params.get('by') || 'namespace';
    const namespace = params.get('namespace') || '';
    main.innerHTML = `<h1>Usage</h1>
      <form class="toolbar" id="form">${rangeLinks('#/usage', params, ['1h', '24h', '7d', '30d'], win.range)}
        <label>by <select name="by">${['namespace', 'pod', 'host', 'model', 'gpu'].map((b) =>
          `<option ${b === by ? 'selected' : ''}>${b}</option>`).join('')}</select></label>
        <label>namespace <input name="namespace" value="${esc(namespace)}" size="12" placeholder="all"></label>
        <button>Apply</button><a id="csv">Download CSV</a><span class="muted" id="window"></span></form>
      <div id="report"><p class="muted">Loading…</p></div>`;
    submitTo(main.querySelector('#form'), '#/usage', params);
    const abort = new AbortController();
    (async () => {
      const q = { start_time: iso(win.start), end_time: iso(win.end), by, namespace };
      const csv = new URL('api/v1/fleet/usage', document.baseURI);
      for (const [k, v] of Object.entries({ ...q, format: 'csv' })) if (v) csv.searchParams.set(k, v);
      main.querySelector('#csv').href = csv;
      const report = await api('api/v1/fleet/usage', q, abort.signal);
      main.querySelector('#window').textContent = `${shortTime(win.start)} – ${shortTime(win.end)}`;
      for (const w of report.warnings || []) {
        main.querySelector('#report').before(el(`<p class="warning" role="note">${esc(w)}</p>`));
      }
      if (!report.count) {
        main.querySelector('#report').innerHTML = '<p class="muted">No samples in this window.</p>';
      } else {
        const total = report.data.reduce((t, u) => ({ hours: t.hours + u.gpu_hours, kwh: t.kwh + u.energy_kwh }), { hours: 0, kwh: 0 });
        main.querySelector('#report').innerHTML = `<table><thead><tr><th>${esc(by)}</th><th class="num">devices</th>
          <th class="num">GPU-hours</th><th class="num">mean utilisation (%)</th><th class="num">energy (kWh)</th>
          <th class="num">peak memory (MiB)</th><th class="num">SM active (%)</th><th>efficiency</th></tr></thead>
          <tbody>${report.data.map((u) => `<tr data-group="${esc(u.group)}" data-class="${esc(u.efficiency_class)}">
          <td>${u.group ? clip(u.group) : '<i class="muted">no workload</i>'}</td><td class="num">${u.devices}</td>
          <td class="num gpu-hours">${fmt(u.gpu_hours, 2)}</td><td class="num">${fmt(u.mean_utilization)}</td>
          <td class="num">${fmt(u.energy_kwh, 3)}</td><td class="num">${fmt(u.peak_memory_mib, 0)}</td>
          <td class="num">${u.profiling && u.profiling.DCGM_FI_PROF_SM_ACTIVE ? fmt(u.profiling.DCGM_FI_PROF_SM_ACTIVE.share * 100) : '<span class="muted" title="not reported">n/r</span>'}</td>
          <td><span class="tag ${CLASS_TAGS[u.efficiency_class] || ''}">${esc(u.efficiency_class.replaceAll('_', ' '))}</span></td></tr>`).join('')}
          <tr class="total"><td>total</td><td></td><td class="num">${fmt(total.hours, 2)}</td><td></td><td class="num">${fmt(total.kwh, 3)}</td><td></td><td></td><td></td></tr>
          </tbody></table>`;
      }
      setStatus('');
      state.ready = true;
    })().catch(showError);
    return () => abort.abort();
  }

  // workloadsPage lists the workload records — who held which device, when, how well —
  // the latest first, a page at a time, with links to the device and to the next page.
  function workloadsPage(params) {
    const filters = { namespace: params.get('namespace') || '', pod: params.get('pod') || '', state: params.get('state') || '' };
    const cursor = params.get('cursor') || '';
    main.innerHTML = `<h1>Workloads</h1>
      <form class="toolbar" id="form">
        <label>namespace <input name="namespace" value="${esc(filters.namespace)}" size="12" placeholder="all"></label>
        <label>pod <input name="pod" value="${esc(filters.pod)}" size="16" placeholder="all"></label>
        <label>state <select name="state">${['', 'open', 'closed'].map((s) =>
          `<option value="${s}" ${s === filters.state ? 'selected' : ''}>${s || 'any'}</option>`).join('')}</select></label>
        <button>Apply</button><a id="csv">Download CSV</a></form>
      <p class="muted">A record per pod's hold on a GPU or MIG instance, kept after the samples are gone; GPU-hours as the usage report counts them. A few minutes behind the samples.</p>
      <div id="records"><p class="muted">Loading…</p></div>`;
    submitTo(main.querySelector('#form'), '#/workloads', {});
    const abort = new AbortController();
    (async () => {
      const csv = new URL('api/v1/workloads', document.baseURI);
      for (const [k, v] of Object.entries({ ...filters, format: 'csv' })) if (v) csv.searchParams.set(k, v);
      main.querySelector('#csv').href = csv;
      const list = await api('api/v1/workloads', { ...filters, cursor, limit: 100 }, abort.signal);
      const pct = (v) => (v === undefined ? '<span class="muted" title="not reported by this exporter">n/r</span>' : fmt(v * 100));
      const box = main.querySelector('#records');
      if (!list.count) {
        box.innerHTML = '<p class="muted">No workload records yet: they are made from the samples a few minutes after they arrive.</p>';
      } else {
        const next = new URLSearchParams({ ...filters, cursor: list.next_cursor || '' });
        box.innerHTML = `<table><thead><tr><th>namespace / pod</th><th>device</th><th>from</th><th>held</th>
          <th class="num">GPU-hours</th><th class="num">mean util (%)</th><th class="num">p95 util (%)</th><th class="num">idle (%)</th>
          <th class="num">SM active (%)</th><th class="num">tensor (%)</th><th class="num">energy (kWh)</th>
          <th class="num">peak memory (MiB)</th><th class="num">events</th><th>efficiency</th></tr></thead><tbody>${list.data.map((w) => `<tr data-id="${w.id}" data-pod="${esc(w.pod)}">
          <td>${clip(`${w.namespace}/${w.pod}`)}${w.container ? ` <span class="muted">${esc(w.container)}</span>` : ''}</td>
          <td><a href="${deviceHref(w)}">${clip(w.hostname)}</a>${w.gpu_instance ? ` · MIG ${esc(w.gpu_instance)}` : ''}</td>
          <td>${shortTime(w.start)}</td><td>${w.open ? '<b>holding</b>, ' : ''}${duration(Date.parse(w.end) - Date.parse(w.start))}</td>
          <td class="num gpu-hours">${fmt(w.gpu_hours, 2)}</td><td class="num">${fmt(w.mean_utilization)}</td>
          <td class="num">${fmt(w.p95_utilization, 0)}</td><td class="num">${w.idle_fraction === undefined ? '–' : fmt(w.idle_fraction * 100)}</td>
          <td class="num">${pct(w.sm_active)}</td><td class="num">${pct(w.tensor_active)}</td>
          <td class="num">${fmt(w.energy_kwh, 3)}</td><td class="num">${fmt(w.peak_memory_mib, 0)}</td>
          <td class="num ${w.events ? 'bad' : ''}">${w.events}</td>
          <td><span class="tag ${CLASS_TAGS[w.efficiency_class] || ''}">${esc((w.efficiency_class || '').replaceAll('_', ' '))}</span></td></tr>`).join('')}</tbody></table>
          ${list.next_cursor ? `<p><a id="next" href="#/workloads?${next}">Older records →</a></p>` : ''}`;
      }
      setStatus('');
      state.ready = true;
    })().catch(showError);
    return () => abort.abort();
  }

  // --- routing -------------------------------------------------------------------------

  let stopPage = () => {};

  function route() {
    stopPage();
    const [path, query] = location.hash.replace(/^#/, '').split('?');
    const params = new URLSearchParams(query || '');
    const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
    state.ready = false;
    state.charts = {};
    let page = 'fleet';
    if (parts[0] === 'gpu' && parts[1]) {
      page = 'gpu';
      stopPage = devicePage(params, parts[1], parts[2]);
    } else if (parts[0] === 'health') {
      page = 'health';
      stopPage = healthPage(params);
    } else if (parts[0] === 'problems') {
      page = 'problems';
      stopPage = problemsPage(params);
    } else if (parts[0] === 'efficiency') {
      page = 'efficiency';
      stopPage = efficiencyPage(params);
    } else if (parts[0] === 'usage') {
      page = 'usage';
      stopPage = usagePage(params);
    } else if (parts[0] === 'workloads') {
      page = 'workloads';
      stopPage = workloadsPage(params);
    } else {
      stopPage = fleetPage(params);
    }
    state.page = page;
    document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
  }

  window.addEventListener('hashchange', route);
  route();
})();
