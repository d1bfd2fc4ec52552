// latentdex page: query by example, learned codes next to the exact baseline. No build step.
import { setupInspect } from './inspect.js';
const $ = (id) => document.getElementById(id);
const state = { collection: null, kind: 'image', key: null, k: 10, offset: 0, rerank: null, maxRerank: 1000, maxDepth: 1000, indexed: false, query: null, map: null, last: null, collections: [], originals: false, seq: 0, selection: 0, replaying: 0 };
// 20 distinguishable colours; labels past the 20 most frequent share the grey of "other".
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#17becf', '#393b79',
  '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#e6550d', '#31a354', '#756bb1', '#fd8d3c', '#a1d99b'];
const OTHER = '#9a9a9a';

function setStatus(msg, busy = false) {
  $('status').textContent = msg;
  $('status').classList.toggle('busy', busy);
}
function showError(msg) {
  const e = $('error');
  e.hidden = !msg;
  e.textContent = msg || '';
}

async function api(path, init) {
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new Error('The server cannot be reached. Is `latentdex serve` running?');
  }
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error ? `${body.error.message} (${body.error.code})` : `HTTP ${res.status}`);
  return body;
}

function writeUrl() {
  const p = new URLSearchParams();
  if (state.collection) p.set('c', state.collection);
  if (state.key) p.set('key', state.key);
  // a typed query is kept in the address (a short one: a long text would make an unwieldy link)
  else if (state.query?.text && state.query.text.length <= 2000) p.set('q', state.query.text);
  p.set('k', String(state.k));
  if (state.offset) p.set('offset', String(state.offset));
  if (state.rerank !== null) p.set('rerank', String(state.rerank));
  // the filter too, so that the address reopens the same page of the same hits
  for (const o of $('labels').selectedOptions) p.append('label', o.value);
  for (const o of $('groups').selectedOptions) p.append('group', o.value);
  if ($('prefix').value) p.set('prefix', $('prefix').value);
  // Leaving a query (by key or text) for another, or for an upload, makes a new entry of the history, so that Back
  // returns to it; another page, k or filter of the same query replaces the entry, and so does a search that replays
  // an address (opening the page, Back, Forward), or that gives an address without a query its first (a random item).
  const shows = (q) => [q.get('c'), q.get('key'), q.get('q')].join('\n');
  const now = new URLSearchParams(location.search);
  const fresh = state.replaying === 0 && (now.has('key') || now.has('q')) && shows(p) !== shows(now);
  if (fresh) history.pushState(null, '', `?${p}`);
  else history.replaceState(null, '', `?${p}`);
}

/** The search options of the page: page, baseline, and the filter the controls set. */
function searchParams() {
  const p = new URLSearchParams({ k: String(state.k), compare: state.kind === 'text' ? 'tfidf' : 'pixel' });
  if (state.offset) p.set('offset', String(state.offset));
  // a collection a replica searches through its store's index has no re-ranking
  if (state.rerank !== null && !state.indexed) p.set('rerank', String(state.rerank));
  for (const o of $('labels').selectedOptions) p.append('label', o.value);
  for (const o of $('groups').selectedOptions) p.append('group', o.value);
  if ($('prefix').value) p.set('prefix', $('prefix').value);
  return p;
}

/** "1 item", "3 items": a count with its noun. */
function counted(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') n.className = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v);
  }
  for (const c of children) if (c != null) n.append(c);
  return n;
}

// Previews of small images (28-px digits) are shown blocky rather than blurred.
function sharpenSmall(ev) {
  if (ev.target.naturalWidth < 64) ev.target.classList.add('model-px');
}

function hitCard(h, queryLabel) {
  const matchClass = queryLabel == null || h.label == null ? '' : h.label === queryLabel ? 'match' : 'miss';
  const dist = h.distance === 0 ? '0' : h.distance < 0.01 ? h.distance.toExponential(2) : h.distance < 10 ? h.distance.toFixed(3) : h.distance.toFixed(1);
  const visual = state.kind === 'text'
    ? el('span', { class: 'snip' }, h.snippet ?? h.key)
    : el('img', { src: h.thumbnail, alt: `item ${h.key}, label ${h.label ?? 'unknown'}`, loading: 'lazy', title: h.key, onload: sharpenSmall });
  const btn = el('button', {
    type: 'button', class: `hit ${matchClass}`, 'data-key': h.key,
    title: `Search by ${h.key}`, 'aria-label': `Rank ${h.rank}: ${h.key}, label ${h.label ?? 'unknown'}, distance ${dist}${matchClass === 'match' ? ', same label as the query' : ''}. Search by this item.`,
    onclick: () => { state.offset = 0; searchByKey(h.key); },
  }, visual, el('span', { class: 'lab' }, `#${h.rank} ${h.label ?? '?'}`), el('span', { class: 'meta' }, `d ${dist}`));
  return el('li', {}, btn);
}

function fillColumn(prefix, list, queryLabel) {
  const ol = $(`${prefix}-hits`);
  ol.replaceChildren(...(list?.hits ?? []).map((h) => hitCard(h, queryLabel)));
  ol.classList.toggle('text', state.kind === 'text');
  if (!list) {
    $(`${prefix}-stats`).textContent = '';
    return;
  }
  const p = list.precision == null ? `precision n/a (${list.hits.length === 0 ? 'no hits on this page' : 'query has no label'})` : `precision@${list.hits.length} ${(list.precision * 100).toFixed(0)}%`;
  $(`${prefix}-stats`).textContent = `${p} · ${list.latencyMs.toFixed(2)} ms`;
  // a two-stage ranking that ended with its full shortlist says so (the server tells)
  if (list.shortlist !== undefined) {
    const more = list.shortlist < state.maxRerank ? `; add rerank=N (up to ${state.maxRerank}) to the address to rank more` : '';
    ol.append(el('li', { class: 'end' }, `The re-ranked ranking ends at its ${list.shortlist}-row shortlist${more}.`));
  }
}

function render(r, query) {
  state.last = r;
  document.body.classList.remove('stale');
  $('codes-method').textContent = `(${r.codes.method})`;
  fillColumn('codes', r.codes, r.query.label);
  fillColumn('base', r.baseline, r.query.label);
  $('overlap').textContent = r.overlap == null ? '' : `Overlap of the two lists: ${(r.overlap * 100).toFixed(0)}%.`;
  const qv = $('query-view');
  const rv = $('recon-view');
  if (state.kind === 'text') {
    qv.replaceChildren(el('p', { class: 'snippet' }, r.query.snippet ?? query.text ?? r.query.key ?? ''));
    $('recon-fig').hidden = true;
  } else {
    $('recon-fig').hidden = false;
    qv.replaceChildren(el('img', { src: r.preview ?? query.src, alt: 'query image', onload: sharpenSmall }));
    rv.replaceChildren(el('img', { src: query.recon ?? r.reconstruction ?? '', alt: 'reconstruction of the query by the autoencoder', class: 'model-px' }));
  }
  const cap = $('query-caption');
  cap.textContent = r.query.key ? `${r.query.key} · label ${r.query.label ?? '?'}` : query.name ?? (query.text !== undefined ? 'typed query' : 'uploaded query');
  const shown = (cap.dataset.shown = String(Number(cap.dataset.shown ?? 0) + 1));
  if (r.query.key && state.originals && state.kind === 'image') {
    const href = `/api/collections/${encodeURIComponent(state.collection)}/items/${encodeURIComponent(r.query.key)}/original`;
    // an item added by upload, or whose file moved, has no original: link only what the server will send, and only
    // while this caption still shows the query it was asked for
    fetch(href, { method: 'HEAD' })
      .then((h) => h.ok && cap.dataset.shown === shown && cap.append(' · ', el('a', { href, target: '_blank', rel: 'noopener' }, 'original file')))
      .catch(() => {});
  }
  const nv = $('novelty');
  nv.hidden = r.novelty === undefined;
  if (r.novelty === null) nv.textContent = 'How unusual the query is: not computed for a collection this large until its items are scored (“Show the most unusual items” below scores them).';
  if (r.novelty) {
    const p = r.novelty.percentile;
    const pct = (v) => (v == null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
    nv.textContent = p == null
      ? 'How unusual the query is cannot be told: the collection has no scored items.'
      : `How unusual for this collection: more unusual than ${(p * 100).toFixed(1)}% of ${r.novelty.reference?.of === 'excerpts' ? `${counted(r.novelty.reference.count, 'excerpt')} of its texts as short as the query (${counted(r.novelty.reference.words, 'word')})` : r.novelty.reference ? `its ${counted(r.novelty.reference.count, 'item')}` : 'its items'} (${r.novelty.score} score; reconstruction error above ${pct(r.novelty.reconstruction.percentile)}, code distance to its 5th nearest item above ${pct(r.novelty.neighbors.percentile)}, ${state.kind === 'text' ? 'TF-IDF' : 'pixel'} distance above ${pct(r.novelty.raw.percentile)}).`;
  }
  drawMap();
  const hits = Math.max(r.codes.hits.length, r.baseline?.hits.length ?? 0);
  $('pager').hidden = r.offset === 0 && !r.next;
  $('prev').disabled = r.offset === 0;
  $('next').disabled = !r.next;
  $('page-info').textContent = hits === 1 ? `hit ${r.offset + 1}` : hits ? `hits ${r.offset + 1}–${r.offset + hits}` : 'no hits on this page';
  const filtered = r.filter ? ` (filter: ${counted(r.filter.matched, 'matching item')})` : '';
  setStatus(`${counted(r.codes.hits.length, 'neighbour')} from ${r.collection}${filtered}.`);
}

/** Runs the last query again (another page, another filter). */
function rerun() {
  const q = state.query;
  if (!q) return;
  if (q.key) searchByKey(q.key);
  else if (q.file) searchByFile(q.file);
  else if (q.text) searchByText(q.text);
}

/** Fills the filter lists with the collection's labels and groups (most frequent first, with counts). */
async function loadFilterValues(name) {
  const { labels, groups } = await api(`/api/collections/${encodeURIComponent(name)}/labels`);
  // the answer for a collection left meanwhile fills nothing
  if (name !== state.collection) return;
  const opts = (vs) => vs.map((v) => el('option', { value: v.value }, `${v.value} (${v.count})`));
  $('labels').replaceChildren(...opts(labels));
  $('labels').size = Math.min(4, Math.max(1, labels.length));
  $('groups').replaceChildren(...opts(groups));
  $('groups').size = Math.min(4, Math.max(1, groups.length));
  $('groups-box').hidden = groups.length === 0;
}

/** Every control that asks something of a collection: disabled until one is open. */
function enableControls(on) {
  for (const n of document.querySelectorAll('#controls input, #controls button, #controls select:not(#collection), #inspect input, #inspect button, #inspect select')) n.disabled = !on;
}

async function run(label, fn) {
  if (!state.collection) {
    showError('No collection is open yet: wait for the demo builds above, or build one with `npx latentdex build --collection NAME --source SRC`.');
    return;
  }
  showError('');
  setStatus(label, true);
  try {
    await fn();
  } catch (e) {
    showError(e.message);
    setStatus('');
  }
}

/**
 * Runs a search: only the latest one started shows its answer or its error (`current()` says whether this one still
 * is). A failed search leaves the results of the one before dimmed, and says so.
 */
function search(label, fn) {
  const seq = ++state.seq;
  const current = () => seq === state.seq;
  return run(label, async () => {
    try {
      await fn(current);
    } catch (e) {
      if (!current()) return;
      const stale = state.last !== null;
      document.body.classList.toggle('stale', stale);
      throw stale ? new Error(`${e.message} The results below are from the previous search.`) : e;
    }
  });
}

function searchByKey(key) {
  return search(`Searching by ${key}…`, async (current) => {
    const c = encodeURIComponent(state.collection);
    // the query is kept even when its search fails (an address's offset too deep): another k or filter reruns it
    state.query = { key };
    const r = await api(`/api/collections/${c}/items/${encodeURIComponent(key)}/neighbors?${searchParams()}`);
    // a later search was started meanwhile: its answer is the one to show
    if (!current()) return;
    state.key = key;
    writeUrl();
    const base = `/api/collections/${c}/items/${encodeURIComponent(key)}`;
    render(r, { src: `${base}/preview`, recon: `${base}/reconstruction.png` });
  });
}

function searchByFile(file) {
  return search(`Searching by ${file.name}…`, async (current) => {
    if (state.kind === 'text') throw new Error('This collection holds text: type a query instead of uploading an image.');
    const fd = new FormData();
    fd.append('image', file);
    const r = await api(`/api/collections/${encodeURIComponent(state.collection)}/search?${searchParams()}`, { method: 'POST', body: fd });
    if (!current()) return;
    state.key = null;
    state.query = { file };
    writeUrl();
    render(r, { src: URL.createObjectURL(file), name: file.name });
  });
}

function searchByText(text) {
  return search('Searching by text…', async (current) => {
    if (!text.trim()) throw new Error('Type some words to search for.');
    state.query = { text };
    const r = await api(`/api/collections/${encodeURIComponent(state.collection)}/search?${searchParams()}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }),
    });
    if (!current()) return;
    state.key = null;
    writeUrl();
    render(r, { text });
  });
}

async function randomItem() {
  await search('Picking a random item…', async (current) => {
    const { key } = await api(`/api/collections/${encodeURIComponent(state.collection)}/random`);
    if (current()) await searchByKey(key);
  });
}

// ---- map of the codes ----
function colourOf(label) {
  return state.map.colours.get(label) ?? OTHER;
}
/** The most frequent labels get a colour each, the rest one shared grey. */
function legendOf(map) {
  const counts = new Map();
  for (const p of map.points) counts.set(p.label, (counts.get(p.label) ?? 0) + 1);
  const ranked = [...counts.entries()].filter(([l]) => l != null).sort((a, b) => b[1] - a[1]);
  const colours = new Map(ranked.slice(0, PALETTE.length).map(([l], i) => [l, PALETTE[i]]));
  const others = ranked.length - colours.size;
  return { colours, entries: [...colours.keys()].map((l) => [l, colours.get(l)]).concat(others > 0 ? [[`${others} other labels`, OTHER]] : []) };
}
function mapTransform() {
  const cv = $('map');
  const pts = state.map.points;
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const pad = 12;
  return {
    fx: (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (cv.width - 2 * pad),
    fy: (y) => cv.height - pad - ((y - y0) / (y1 - y0 || 1)) * (cv.height - 2 * pad),
  };
}
function drawMap() {
  const cv = $('map');
  const ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!state.map || state.map.points.length === 0) return;
  const { fx, fy } = mapTransform();
  // Smaller, fainter dots as the map fills, so a few thousand points still show their clusters.
  const n = state.map.points.length;
  const size = n > 4000 ? 2 : 3;
  ctx.globalAlpha = n > 4000 ? 0.35 : 0.55;
  for (const p of state.map.points) {
    ctx.fillStyle = colourOf(p.label);
    ctx.fillRect(fx(p.x) - size / 2, fy(p.y) - size / 2, size, size);
  }
  ctx.globalAlpha = 1;
  const byKey = new Map(state.map.points.map((p) => [p.key, p]));
  for (const h of state.last?.codes.hits ?? []) {
    const p = byKey.get(h.key);
    if (!p) continue;
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(fx(p.x), fy(p.y), 5, 0, 2 * Math.PI);
    ctx.stroke();
  }
  const q = state.key && byKey.get(state.key);
  if (q) {
    ctx.fillStyle = '#000';
    ctx.beginPath();
    ctx.arc(fx(q.x), fy(q.y), 7, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = '#ffeb3b';
    ctx.beginPath();
    ctx.arc(fx(q.x), fy(q.y), 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  $('legend').replaceChildren(...state.map.legend.map(([l, c]) => el('span', { style: `--c:${c}` }, l)));
}
function onMapClick(ev) {
  if (!state.map) return;
  const cv = $('map');
  const r = cv.getBoundingClientRect();
  const x = ((ev.clientX - r.left) / r.width) * cv.width;
  const y = ((ev.clientY - r.top) / r.height) * cv.height;
  const { fx, fy } = mapTransform();
  let best = null;
  let bd = Infinity;
  for (const p of state.map.points) {
    const d = (fx(p.x) - x) ** 2 + (fy(p.y) - y) ** 2;
    if (d < bd) [bd, best] = [d, p];
  }
  if (best) {
    state.offset = 0;
    searchByKey(best.key);
  }
}

/** Shows a collection; `from` is what the address names: a key or a typed text, a page offset, a filter. */
async function selectCollection(name, from = {}) {
  // a later selection (another collection, Back, Forward) wins: this one stops after each wait, and the searches of
  // the collection left behind show nothing
  const selection = ++state.selection;
  state.seq++;
  state.collection = name;
  enableControls(true);
  const info = state.collections.find((c) => c.name === name);
  state.kind = info?.kind ?? 'image';
  state.indexed = info?.servedFrom === 'store-index';
  $('text-box').hidden = state.kind !== 'text';
  $('upload-label').hidden = state.kind === 'text';
  $('base-title').textContent = state.kind === 'text' ? 'Exact TF-IDF cosine baseline' : 'Exact pixel-space baseline';
  state.map = null;
  state.offset = 0;
  state.query = null;
  inspect.reset();
  drawMap();
  // without the collection's labels and groups, which of the address's are missing cannot be told
  const filters = await loadFilterValues(name).then(() => true, (e) => { showError(e.message); return false; });
  if (selection !== state.selection) return;
  const pick = (list, values) => { for (const o of $(list).options) o.selected = (values ?? []).includes(o.value); };
  pick('labels', from.labels);
  pick('groups', from.groups);
  // what the address asked for and this collection cannot show is said (after the search, which clears the error line)
  const absent = (list, values, noun) => {
    const have = new Set([...$(list).options].map((o) => o.value));
    const gone = (values ?? []).filter((v) => !have.has(v));
    return gone.length ? `No ${noun} ${gone.map((v) => `'${v}'`).join(', ')} in '${name}'; the filter leaves ${gone.length === 1 ? 'it' : 'them'} out.` : '';
  };
  const notes = [...(from.notes ?? []), ...(filters ? [absent('labels', from.labels, 'label'), absent('groups', from.groups, 'group')] : [])];
  if (from.text && state.kind !== 'text' && !from.key) notes.push(`'${name}' holds images: a typed query (q=) applies to text collections, so a random item is shown instead.`);
  $('prefix').value = from.prefix ?? '';
  // a collection a replica searches through its store's index has no map of all its codes
  if (!state.indexed) {
    api(`/api/collections/${encodeURIComponent(name)}/map`).then((m) => {
      if (selection !== state.selection) return;
      const { colours, entries } = legendOf(m);
      state.map = { ...m, colours, legend: entries };
      drawMap();
    }).catch((e) => selection === state.selection && showError(e.message));
  }
  if (from.key) {
    state.offset = from.offset ?? 0;
    await searchByKey(from.key);
  } else if (from.text && state.kind === 'text') {
    state.offset = from.offset ?? 0;
    $('text').value = from.text;
    await searchByText(from.text);
  } else await randomItem();
  if (selection !== state.selection) return;
  const note = notes.filter(Boolean).join(' ');
  // beside the search's own error, if it failed
  if (note) showError([$('error').hidden ? '' : $('error').textContent, note].filter(Boolean).join(' '));
}

function listCollections(collections) {
  $('collection').replaceChildren(...collections.map((c) => el('option', { value: c.name }, `${c.name} (${c.kind}, ${c.count})`)));
}

const demoPending = (builds) => builds.some((b) => b.state === 'queued' || b.state === 'building');

/** The demo collections the server is still building (`serve --demo` on a first start), with their progress. */
function showDemo(builds) {
  const box = $('demo');
  const shown = builds.filter((b) => b.state !== 'ready');
  box.hidden = shown.length === 0;
  box.replaceChildren(
    ...shown.map((b) => el('div', { class: `build ${b.state}` },
      el('strong', {}, b.name),
      b.state === 'failed' ? el('span', {}, `could not be built: ${b.error}`) : el('progress', { max: '100', value: String(b.percent ?? 0), 'aria-label': `${b.name} build progress` }),
      b.state === 'failed' ? '' : el('span', {}, b.state === 'queued' ? 'waiting for a free core' : `${b.phase ?? 'starting'} ${b.percent ?? 0}%${b.eta ? ` · ETA ${b.eta}` : ''}`))),
  );
  if (demoPending(builds)) setTimeout(pollDemo, 2000);
}

/** Follows the demo builds; each collection joins the list as soon as it is built, without changing the view. */
async function pollDemo() {
  try {
    const health = await api('/api/health');
    const { collections: all } = await api('/api/collections');
    const collections = all.filter((c) => c.available !== false);
    if (collections.length !== state.collections.length) {
      state.collections = collections;
      if (state.collection) {
        listCollections(collections);
        $('collection').value = state.collection;
      } else if (collections.length) {
        $('error').hidden = true;
        listCollections(collections);
        $('collection').value = collections[0].name;
        await replaying(() => selectCollection(collections[0].name));
      }
    }
    showDemo(health.demo ?? []);
  } catch {
    setTimeout(pollDemo, 5000);
  }
}

async function init() {
  const params = new URLSearchParams(location.search);
  setStatus('Loading collections…', true);
  enableControls(false);
  try {
    const [{ collections: all }, health] = await Promise.all([api('/api/collections'), api('/api/health')]);
    // a k from the address is kept within what the server answers (?k=500 shows its most, not an error)
    const maxK = health.maxK;
    // numbers from the address: a value that is not one, or over the server's most, is said, not dropped in silence
    const addressNotes = [];
    const whole = (name, least) => {
      const v = params.get(name);
      if (v === null) return null;
      if (/^\d+$/.test(v) && Number(v) >= least) return Number(v);
      addressNotes.push(`${name}=${v} is not a whole number${least ? ` of at least ${least}` : ''}; it is left out.`);
      return null;
    };
    const most = (name, v, max) => {
      if (v === null || v <= max) return v;
      addressNotes.push(`${name}=${v} is over the most this server takes (${max}); ${max} is used.`);
      return max;
    };
    // a longer re-ranking shortlist from the address (rerank=N), kept to what the server takes
    state.maxRerank = health.maxRerank ?? state.maxRerank;
    state.maxDepth = health.maxDepth ?? state.maxDepth;
    state.rerank = most('rerank', whole('rerank', 0), state.maxRerank);
    state.k = most('k', whole('k', 1), maxK) ?? 10;
    for (const o of [...$('k').options]) if (Number(o.value) > maxK) o.remove();
    if (![...$('k').options].some((o) => o.value === String(state.k))) $('k').append(el('option', {}, String(state.k)));
    $('k').value = String(state.k);
    // Collections that cannot be opened are listed by the server with why; the page names them and skips them.
    const collections = all.filter((c) => c.available !== false);
    const down = all.filter((c) => c.available === false);
    if (down.length) showError(`Unavailable: ${down.map((c) => `${c.name} (${c.error.message})`).join('; ')}`);
    state.collections = collections;
    state.originals = Boolean(health.originals);
    $('health').textContent = `Backend ${health.backend ?? '?'} · latentdex ${health.version ?? ''}`;
    showDemo(health.demo ?? []);
    if (collections.length === 0) {
      setStatus('');
      if (!demoPending(health.demo ?? [])) showError('No collections yet: build one with `npx latentdex build --collection NAME --source SRC`.');
      return;
    }
    listCollections(collections);
    const named = params.get('c');
    const want = collections.some((c) => c.name === named) ? named : collections[0].name;
    $('collection').value = want;
    // an offset the server would refuse (past its deepest page) is kept within it
    const offset = most('offset', whole('offset', 0), state.maxDepth - state.k) ?? 0;
    const from = { key: params.get('key'), text: params.get('q'), offset, labels: params.getAll('label'), groups: params.getAll('group'), prefix: params.get('prefix'), notes: addressNotes };
    // what the address asked of a collection that is not here is not applied; its notes are still said
    if (named !== null && want !== named) addressNotes.unshift(`No collection '${named}' here; showing '${want}' instead.`);
    await selectCollection(want, want === named ? from : { notes: addressNotes });
  } catch (e) {
    setStatus('');
    showError(e.message);
  }
}

$('collection').addEventListener('change', (e) => selectCollection(e.target.value));
/** Runs a search that shows what an address holds: it replaces the history entry rather than adding one. */
async function replaying(fn) {
  state.replaying++;
  try {
    await fn();
  } finally {
    state.replaying--;
  }
}
// Back and Forward show the query of the address they reach (an address the page wrote itself)
window.addEventListener('popstate', () => {
  const p = new URLSearchParams(location.search);
  const name = p.get('c');
  if (!name || !state.collections.some((c) => c.name === name)) return;
  const k = p.get('k');
  if (k && [...$('k').options].some((o) => o.value === k)) {
    state.k = Number(k);
    $('k').value = k;
  }
  $('collection').value = name;
  const from = { key: p.get('key'), text: p.get('q'), offset: Number(p.get('offset')) || 0, labels: p.getAll('label'), groups: p.getAll('group'), prefix: p.get('prefix') };
  replaying(() => selectCollection(name, from));
});
$('k').addEventListener('change', (e) => {
  state.k = Number(e.target.value);
  state.offset = 0;
  if (state.query) rerun();
  else writeUrl();
});
$('random').addEventListener('click', () => { state.offset = 0; randomItem(); });
const refilter = () => { state.offset = 0; rerun(); };
$('labels').addEventListener('change', refilter);
$('groups').addEventListener('change', refilter);
$('prefix').addEventListener('change', refilter);
// The offset moves to the page shown: from the answer, so a refused page leaves it where it was.
$('prev').addEventListener('click', () => { state.offset = Math.max(0, (state.last?.offset ?? 0) - state.k); rerun(); });
$('next').addEventListener('click', () => { state.offset = (state.last?.offset ?? 0) + state.k; rerun(); });
$('upload').addEventListener('change', (e) => { state.offset = 0; if (e.target.files[0]) searchByFile(e.target.files[0]); });
$('text-go').addEventListener('click', () => { state.offset = 0; searchByText($('text').value); });
$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') { state.offset = 0; searchByText($('text').value); } });
$('map').addEventListener('click', onMapClick);
let dragDepth = 0;
window.addEventListener('dragenter', (e) => { e.preventDefault(); dragDepth++; $('drop').hidden = false; });
window.addEventListener('dragleave', () => { if (--dragDepth <= 0) { dragDepth = 0; $('drop').hidden = true; } });
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('drop').hidden = true;
  const f = e.dataTransfer?.files?.[0];
  if (f) {
    state.offset = 0;
    searchByFile(f);
  }
});
const inspect = setupInspect({
  api, el, $, counted, sharpenSmall, run, searchByKey: (key) => { state.offset = 0; return searchByKey(key); },
  collection: () => state.collection, kind: () => state.kind, done: (msg) => setStatus(msg),
});
replaying(init);
