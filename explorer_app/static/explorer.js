// The explorer page: reads the controls, asks the server for PNGs (/api/...) and shows them.
// Requests are made one at a time; while one runs, moving a slider only marks the view as stale,
// so dragging never queues up work and the last position is always rendered.
'use strict';

const $ = (id) => document.getElementById(id);
let info = null;
let query = null;          // Clicked pixel {x, y} in image coordinates, or null.
let busy = false, stale = false;

function setStatus(text, isError = false, id = 'status') {
  $(id).textContent = text;
  $(id).classList.toggle('error', isError);
}

function viewParams() {
  const params = new URLSearchParams({seed: $('seed-number').value, psi: $('psi').value, noise: $('noise').value});
  if (info.num_classes > 0) params.set('class', $('class').value);
  if ($('mix').checked) {
    params.set('mix_seed', $('mix-seed').value);
    params.set('mix_styles', `${$('mix-from').value}-${$('mix-to').value}`);
  }
  return params;
}

// Fetch a PNG into an <img>; returns the render time, or throws the server's message.
async function loadPng(img, url) {
  const response = await fetch(url);
  if (!response.ok) {
    const body = await response.json().catch(() => ({detail: response.statusText}));
    throw new Error(typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail));
  }
  const objectUrl = URL.createObjectURL(await response.blob());
  const old = img.src;
  img.src = objectUrl;
  await img.decode();
  if (old.startsWith('blob:')) URL.revokeObjectURL(old);
  img.dataset.url = url;
  img.hidden = false;
  return parseFloat(response.headers.get('X-Render-Seconds'));
}

async function renderView() {
  const params = viewParams();
  const url = `/api/image.png?${params}`;
  const seconds = await loadPng($('image'), url);
  const mix = params.has('mix_seed') ? ` mixed with seed ${params.get('mix_seed')} (w ${params.get('mix_styles')})` : '';
  $('download').href = url;
  $('download').download = params.has('mix_seed') ? `${params.get('seed')}-${params.get('mix_seed')}.png`
    : `seed${params.get('seed').padStart(4, '0')}.png`;
  let text = `Seed ${params.get('seed')}${mix}, psi ${params.get('psi')}: ${(seconds * 1000).toFixed(0)} ms`;
  if (query && $('show-attention').checked && info.blocks.length) {
    const attention = new URLSearchParams(params);
    attention.set('block', $('block').value);
    attention.set('head', $('head').value);
    attention.set('x', query.x);
    attention.set('y', query.y);
    await loadPng($('attention'), `/api/attention.png?${attention}`);
    text += `; attention of pixel (${query.x}, ${query.y}) in ${$('block').value}, head ${$('head').value}`;
  } else {
    $('attention').hidden = true;
  }
  setStatus(text);
}

// Render the current view; calls made while a render runs collapse into one more render.
async function refresh() {
  if (busy) { stale = true; return; }
  busy = true;
  document.body.dataset.busy = '1';
  do {
    stale = false;
    try { await renderView(); } catch (err) { setStatus(err.message, true); }
  } while (stale);
  busy = false;
  document.body.dataset.busy = '0';
}

async function interpolate() {
  const params = viewParams();
  params.delete('mix_seed');
  params.delete('mix_styles');
  params.set('seed_to', $('seed-to').value);
  params.set('steps', $('steps').value);
  try {
    const seconds = await loadPng($('strip'), `/api/interpolation.png?${params}`);
    setStatus(`From seed ${params.get('seed')} to ${params.get('seed_to')} in ${params.get('steps')} steps, linear in W: `
      + `${(seconds * 1000).toFixed(0)} ms`, false, 'strip-status');
  } catch (err) {
    setStatus(err.message, true, 'strip-status');
  }
}

function fillHeads() {
  const block = info.blocks.find((b) => b.name === $('block').value);
  $('head').replaceChildren(new Option('mean', 'mean'), ...Array.from({length: block.heads}, (_, h) => new Option(h, h)));
  $('attention-hint').textContent = 'Click a pixel of the image: the heat map shows the tokens its token attends to'
    + ` (${block.resolution}x${block.resolution} tokens in ${block.name}).`
    + (block.linformer ? ' This block uses Linformer: its keys are projected, so the map shows attention times projection,'
      + ' the effective weight of each token, scaled to its range.' : '');
}

function onStageClick(event) {
  if (!info.blocks.length) return;  // No attention to show (e.g. a StyleGAN2 generator).
  const stage = $('stage');
  const scale = info.resolution / stage.clientWidth;
  query = {x: Math.min(Math.floor(event.offsetX * scale), info.resolution - 1),
           y: Math.min(Math.floor(event.offsetY * scale), info.resolution - 1)};
  const cell = stage.clientWidth / info.resolution;
  Object.assign($('marker').style, {left: `${query.x * cell}px`, top: `${query.y * cell}px`,
    width: `${Math.max(cell, 4)}px`, height: `${Math.max(cell, 4)}px`});
  $('marker').hidden = false;
  refresh();
}

async function init() {
  info = await (await fetch('/api/info')).json();
  document.title = info.title;
  $('title').textContent = info.title;
  $('network-info').textContent = `${info.resolution}x${info.resolution}, ${info.channels} channel(s), `
    + `${info.num_classes ? `${info.num_classes} classes` : 'unconditional'}, ${info.num_ws} w layers, on ${info.device}`;
  if (info.num_classes > 0) {
    $('class').replaceChildren(...Array.from({length: info.num_classes}, (_, c) => new Option(c, c)));
    $('class-label').hidden = false;
  }
  for (const id of ['mix-from', 'mix-to']) $(id).max = info.num_ws - 1;
  $('mix-to').value = Math.max(1, Math.floor(info.num_ws / 2)) - 1;  // style_mixing.py's default: the first half.
  $('seed-number').max = info.max_seed;
  $('steps').max = info.max_interpolation_steps;
  if (info.blocks.length) {
    $('block').replaceChildren(...info.blocks.map((b) => new Option(`${b.name} (${b.resolution}x${b.resolution})`, b.name)));
    fillHeads();
  } else {
    $('attention-controls').hidden = true;
  }

  $('seed').addEventListener('input', () => { $('seed-number').value = $('seed').value; refresh(); });
  $('seed-number').addEventListener('input', () => { $('seed').value = $('seed-number').value; refresh(); });
  $('psi').addEventListener('input', () => { $('psi-value').value = Number($('psi').value).toFixed(2); refresh(); });
  for (const id of ['class', 'noise', 'mix', 'mix-seed', 'mix-from', 'mix-to', 'head', 'show-attention']) {
    $(id).addEventListener('input', refresh);
  }
  $('block').addEventListener('input', () => { fillHeads(); refresh(); });
  $('stage').addEventListener('click', onStageClick);
  $('interpolate').addEventListener('click', interpolate);
  $('controls').addEventListener('submit', (event) => event.preventDefault());
  await refresh();
}

init().catch((err) => setStatus(`Cannot reach the explorer server: ${err.message}`, true));
