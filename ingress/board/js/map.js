// The city map: an SVG in a flat projection (100 m per unit, east-west
// shrunk by cos(latitude)), efectivos as dots coloured by disponibilidad,
// active tareas as squares coloured by prioridad.

import { svg, clear } from './dom.js';
import { AREA, OUTLINE, RIVER, RIACHUELO_END, SHORE_END, LABELS } from './city.js';

const UNIT_M = 100;
const M_PER_DEG_LAT = 110574;
const LAT0 = (AREA.north + AREA.south) / 2;
const LNG0 = (AREA.west + AREA.east) / 2;
const M_PER_DEG_LNG = 111320 * Math.cos((LAT0 * Math.PI) / 180);
const MARGIN = 8;
const UNIT_RADIUS = 1.4;
const TASK_SIDE = 2.6;

export const project = (lat, lng) => ({
  x: ((lng - LNG0) * M_PER_DEG_LNG) / UNIT_M,
  y: ((LAT0 - lat) * M_PER_DEG_LAT) / UNIT_M,
});

export const unproject = (x, y) => ({
  lat: LAT0 - (y * UNIT_M) / M_PER_DEG_LAT,
  lng: LNG0 + (x * UNIT_M) / M_PER_DEG_LNG,
});

export class CityMap {
  constructor(node) {
    this.node = node;
    const nw = project(AREA.north, AREA.west);
    const se = project(AREA.south, AREA.east);
    node.setAttribute('viewBox', [nw.x - MARGIN, nw.y - MARGIN, se.x - nw.x + 2 * MARGIN, se.y - nw.y + 2 * MARGIN].join(' '));
    node.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    clear(node);
    node.append(this.background(nw, se));
    this.tareas = node.appendChild(svg('g', { class: 'tareas' }));
    this.efectivos = node.appendChild(svg('g', { class: 'efectivos' }));
    this.marks = node.appendChild(svg('g', { class: 'marks' }));
    this.units = new Map();
    this.tasks = new Map();
  }

  background(nw, se) {
    const g = svg('g', { class: 'base' });
    const points = (list) => list.map(([lat, lng]) => project(lat, lng)).map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    g.append(svg('polygon', { class: 'water', points: points(RIVER) }));
    g.append(svg('polygon', { class: 'land', points: points(OUTLINE) }));
    g.append(svg('polyline', { class: 'riachuelo', points: points(OUTLINE.slice(SHORE_END, RIACHUELO_END + 1)) }));
    // A 2 km grid, so distances can be judged by eye.
    for (let x = Math.ceil(nw.x / 20) * 20; x <= se.x; x += 20) {
      g.append(svg('line', { class: 'grid', x1: x, x2: x, y1: nw.y, y2: se.y }));
    }
    for (let y = Math.ceil(nw.y / 20) * 20; y <= se.y; y += 20) {
      g.append(svg('line', { class: 'grid', x1: nw.x, x2: se.x, y1: y, y2: y }));
    }
    for (const label of LABELS) {
      const p = project(label.lat, label.lng);
      g.append(svg('text', { class: 'water-label', x: p.x, y: p.y, 'text-anchor': 'middle', text: label.text }));
    }
    return g;
  }

  // A click as a position; `null` outside the drawing.
  pointAt(event) {
    const matrix = this.node.getScreenCTM();
    if (!matrix) return null;
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return unproject(p.x, p.y);
  }

  clearAll() {
    clear(this.efectivos);
    clear(this.tareas);
    this.units.clear();
    this.tasks.clear();
  }

  // {efectivo_id, lat, lng, disponibilidad?, codigo_interno?}
  upsertUnit(unit) {
    let dot = this.units.get(unit.efectivo_id);
    if (!dot) {
      if (unit.lat == null || unit.lng == null) return;
      dot = svg('circle', { r: UNIT_RADIUS, 'data-id': unit.efectivo_id }, svg('title'));
      this.units.set(unit.efectivo_id, dot);
      this.efectivos.append(dot);
    }
    if (unit.codigo_interno) dot.dataset.codigo = unit.codigo_interno;
    if (unit.disponibilidad) dot.dataset.disponibilidad = unit.disponibilidad;
    if (unit.lat != null && unit.lng != null) {
      const p = project(unit.lat, unit.lng);
      dot.setAttribute('cx', p.x.toFixed(2));
      dot.setAttribute('cy', p.y.toFixed(2));
    }
    this.paintUnit(dot);
  }

  setDisponibilidad(efectivoId, disponibilidad) {
    const dot = this.units.get(efectivoId);
    if (!dot) return false;
    dot.dataset.disponibilidad = disponibilidad;
    this.paintUnit(dot);
    return true;
  }

  paintUnit(dot) {
    const d = dot.dataset.disponibilidad || 'desconocida';
    const highlighted = dot.classList.contains('highlight');
    dot.setAttribute('class', `efectivo d-${d}${highlighted ? ' highlight' : ''}`);
    dot.firstChild.textContent = `${dot.dataset.codigo || `efectivo ${dot.dataset.id}`} · ${d}`;
  }

  highlightUnit(efectivoId) {
    for (const dot of this.efectivos.querySelectorAll('.highlight')) dot.classList.remove('highlight');
    const dot = this.units.get(efectivoId);
    if (dot) {
      dot.classList.add('highlight');
      // Drawn last, so no other dot hides it.
      this.efectivos.append(dot);
    }
  }

  // {tarea_id, lat, lng, prioridad, estado, codigo, titulo}
  upsertTask(task) {
    if (task.lat == null || task.lng == null || !['programada', 'en_curso', 'pausada'].includes(task.estado)) {
      this.removeTask(task.tarea_id);
      return;
    }
    let square = this.tasks.get(task.tarea_id);
    if (!square) {
      square = svg('rect', { width: TASK_SIDE, height: TASK_SIDE, 'data-id': task.tarea_id }, svg('title'));
      this.tasks.set(task.tarea_id, square);
      this.tareas.append(square);
    }
    const p = project(task.lat, task.lng);
    square.setAttribute('x', (p.x - TASK_SIDE / 2).toFixed(2));
    square.setAttribute('y', (p.y - TASK_SIDE / 2).toFixed(2));
    square.setAttribute('class', `tarea p-${task.prioridad}`);
    square.dataset.estado = task.estado;
    square.dataset.prioridad = task.prioridad;
    square.firstChild.textContent = `${task.codigo} · ${task.titulo} · ${task.estado}`;
  }

  removeTask(tareaId) {
    const square = this.tasks.get(tareaId);
    if (square) square.remove();
    this.tasks.delete(tareaId);
  }

  // Where an emergency was reported, until the next one.
  markDrop(lat, lng) {
    clear(this.marks);
    const p = project(lat, lng);
    this.marks.append(svg('circle', { class: 'drop', cx: p.x, cy: p.y, r: 4 }));
  }
}
