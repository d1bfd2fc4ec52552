// "Look into the collection": outliers with their reconstructions, near-duplicate groups, denoising by the model.
/**
 * Wires the section's controls. `page` gives what the page owns: api(), el(), counted(), the current collection and kind,
 * run() (status and errors), searchByKey() and the image onload that keeps small images blocky.
 */
export function setupInspect(page) {
  const { api, el, $ } = page;
  const base = () => `/api/collections/${encodeURIComponent(page.collection())}`;
  const pct = (p) => (p == null ? 'n/a' : `${(p * 100).toFixed(1)}%`);
  const num = (v) => (v == null ? '–' : v < 0.01 ? v.toExponential(2) : v.toFixed(3));

  function itemButton(it, extra, pictures) {
    const visual = page.kind() === 'text' ? [el('span', { class: 'snip' }, it.snippet ?? it.key)] : pictures();
    return el('button', {
      type: 'button', class: 'hit', title: `Search by ${it.key}`,
      'aria-label': `${it.key}, label ${it.label ?? 'unknown'}${extra ? `, ${extra}` : ''}. Search by this item.`,
      onclick: () => page.searchByKey(it.key),
    }, ...visual, el('span', { class: 'lab' }, it.key), extra ? el('span', { class: 'meta' }, extra) : null);
  }
  const img = (src, alt) => el('img', { src, alt, loading: 'lazy', onload: page.sharpenSmall });

  async function showOutliers() {
    await page.run('Scoring every item…', async () => {
      const score = $('outlier-score').value;
      const asked = page.collection();
      const r = await api(`${base()}/outliers?score=${encodeURIComponent(score)}&top=24`);
      if (asked !== page.collection()) return; // another collection was chosen meanwhile
      $('inspect-stats').textContent = `The ${r.items.length} most unusual of ${page.counted(r.count, 'item')} by the ${r.score} score${page.kind() === 'text' ? '' : ' (each item, then its reconstruction from the code)'}.`;
      $('inspect-view').replaceChildren(el('ol', { class: 'outliers' }, ...r.items.map((it) => el('li', {}, itemButton(
        it,
        `#${it.rank} · score ${num(it.score)} · above ${pct(it.percentile)} · rec. ${num(it.reconstruction)} · code dist. ${num(it.neighbors)} · ${page.kind() === 'text' ? 'TF-IDF' : 'pixel'} dist. ${num(it.raw)}`,
        () => [img(it.thumbnail, `item ${it.key}`), it.reconstructionImage ? img(it.reconstructionImage, `reconstruction of ${it.key}`) : null],
      )))));
      page.done(`${page.counted(r.items.length, 'outlier')} of ${page.collection()}.`);
    });
  }

  async function showDuplicates() {
    await page.run('Looking for near-duplicates…', async () => {
      const asked = page.collection();
      const r = await api(`${base()}/duplicates?limit=50`);
      if (asked !== page.collection()) return;
      const copiesOnly = r.thresholds?.code === 'exact copies only' || r.thresholds?.raw === 'exact copies only';
      const within = copiesOnly ? 'exact copies only (too few items for default thresholds)' : `within code distance ${num(r.threshold)} and raw distance ${num(r.rawThreshold)}`;
      $('inspect-stats').textContent = r.count === 0
        ? `No near-duplicates ${copiesOnly ? `(${within})` : within}.`
        : `${page.counted(r.count, 'group')} (${page.counted(r.items, 'item')}), ${within}${r.count > r.groups.length ? `; the ${r.groups.length} largest shown` : ''}.`;
      $('inspect-view').replaceChildren(...r.groups.map((g) => el('div', { class: 'dup-group' },
        el('span', { class: 'meta' }, g.exact ? 'exact copies' : `near, ≤ ${num(g.maxDistance)}`),
        ...g.items.map((it) => itemButton(it, null, () => [img(it.thumbnail, `item ${it.key}`)])))));
      page.done(`${page.counted(r.count, 'duplicate group')} in ${page.collection()}.`);
    });
  }

  async function denoise(file) {
    await page.run(`Denoising ${file.name}…`, async () => {
      const fd = new FormData();
      fd.append('image', file);
      let res;
      try {
        res = await fetch(`${base()}/denoise`, { method: 'POST', body: fd });
      } catch {
        throw new Error('The server cannot be reached. Is `latentdex serve` running?');
      }
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        throw new Error(body?.error ? `${body.error.message} (${body.error.code})` : `HTTP ${res.status}`);
      }
      const out = URL.createObjectURL(await res.blob());
      const trained = res.headers.get('x-latentdex-denoising-model') === 'true';
      $('inspect-stats').textContent = trained ? 'Before and after the denoising model.' : 'Before and after the model (it was not trained with --denoise: it reconstructs rather than removes noise).';
      $('inspect-view').replaceChildren(el('div', { class: 'pair' },
        el('figure', { class: 'cell' }, el('img', { src: URL.createObjectURL(file), alt: 'image sent', onload: page.sharpenSmall }), el('figcaption', {}, 'before')),
        el('figure', { class: 'cell' }, el('img', { src: out, alt: 'denoised image', class: 'model-px' }), el('figcaption', {}, 'after'))));
      page.done('Denoised.');
    });
  }

  $('outliers-go').addEventListener('click', showOutliers);
  $('duplicates-go').addEventListener('click', showDuplicates);
  $('denoise').addEventListener('change', (e) => { if (e.target.files[0]) denoise(e.target.files[0]); e.target.value = ''; });
  return {
    /** Clears the section for another collection. */
    reset() {
      $('inspect-stats').textContent = '';
      $('inspect-view').replaceChildren();
      $('denoise-label').hidden = page.kind() === 'text';
    },
  };
}
