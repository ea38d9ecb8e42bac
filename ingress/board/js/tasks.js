// The task list: server-side filters, the state-machine actions the caller
// may take (domain.md §3), and live task events applied in place.

import { $, el, clear, PRIORIDADES } from './dom.js';

const ACTIVE = ['programada', 'en_curso', 'pausada'];
const LIST_LIMIT = 100;
const ACTION_WAIT_S = 10;
const ACTIONS = {
  programada: ['start', 'cancel'],
  en_curso: ['pause', 'finish', 'cancel'],
  pausada: ['resume', 'cancel'],
};
const LABELS = { start: 'iniciar', pause: 'pausar', resume: 'reanudar', finish: 'finalizar', cancel: 'cancelar' };

export class TaskList {
  constructor(api, map, caller) {
    this.api = api;
    this.map = map;
    this.caller = caller;
    this.body = $('#task-list');
    this.error = $('#task-error');
    this.tasks = new Map();
    this.loading = 0;
    for (const id of ['#filter-estado', '#filter-prioridad', '#filter-tipo']) $(id).addEventListener('change', () => this.load());
    let typing;
    $('#filter-q').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.load(), 300);
    });
    $('#task-filters').addEventListener('submit', (e) => e.preventDefault());
  }

  filters() {
    return {
      estado: $('#filter-estado').value,
      prioridadMin: Number($('#filter-prioridad').value) || null,
      tipo: $('#filter-tipo').value,
      q: $('#filter-q').value.trim(),
    };
  }

  async load() {
    const f = this.filters();
    const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
    for (const estado of f.estado === 'activas' ? ACTIVE : f.estado ? [f.estado] : []) query.append('estado', estado);
    if (f.prioridadMin) query.set('prioridad_min', String(f.prioridadMin));
    if (f.tipo) query.set('tipo', f.tipo);
    if (f.q) query.set('q', f.q);
    const ticket = ++this.loading;
    try {
      const tasks = await this.api.request('GET', `/api/v1/tasks?${query}`);
      if (ticket !== this.loading) return;
      this.tasks.clear();
      clear(this.body);
      for (const t of tasks) {
        this.upsert(t, { append: true });
        // nivel 1 has no map view: its own tasks are what its map shows.
        if (this.caller.nivel < 2) this.apply(t);
      }
      this.error.textContent = tasks.length ? '' : 'Ninguna tarea coincide con los filtros.';
    } catch (e) {
      if (ticket === this.loading) this.error.textContent = `No se pudieron cargar las tareas: ${e.message}`;
    }
  }

  matches(t) {
    const f = this.filters();
    if (f.estado === 'activas' ? !ACTIVE.includes(t.estado) : f.estado && t.estado !== f.estado) return false;
    if (f.prioridadMin && t.prioridad < f.prioridadMin) return false;
    if (f.tipo && t.tipo !== f.tipo) return false;
    const q = f.q.toLowerCase();
    return !q || t.codigo.toLowerCase().includes(q) || (t.titulo || '').toLowerCase().includes(q);
  }

  // A full Tarea from the API or an event. A row that stops matching the
  // filters stays, greyed, until the next load: the dispatcher sees what
  // happened to it instead of a row vanishing under the cursor.
  upsert(t, { append = false, fresh = false } = {}) {
    const row = this.body.querySelector(`tr.task[data-id="${t.id}"]`);
    if (!row && !this.matches(t)) return;
    this.tasks.set(t.id, t);
    const next = this.render(t);
    if (!this.matches(t)) next.classList.add('outside');
    if (row) row.replaceWith(next);
    else if (append) this.body.append(next);
    else this.body.prepend(next);
    if (fresh) next.classList.add('fresh');
  }

  render(t) {
    return el(
      'tr',
      { class: 'task', 'data-id': t.id, 'data-estado': t.estado, 'data-codigo': t.codigo },
      el('td', { text: t.codigo }),
      el('td', {}, t.titulo, el('br'), el('small', { class: 'note', text: t.tipo })),
      el('td', {}, el('span', { class: `prio p-${t.prioridad}`, text: PRIORIDADES[t.prioridad] || t.prioridad })),
      el('td', { class: 'estado', text: t.estado }),
      el('td', {}, this.actions(t)),
    );
  }

  actions(t) {
    const box = el('div', { class: 'actions' });
    for (const action of ACTIONS[t.estado] || []) {
      if (action === 'cancel' && this.caller.nivel < 2) continue;
      box.append(
        el('button', {
          type: 'button',
          'data-action': action,
          text: LABELS[action],
          onclick: () => (action === 'cancel' ? this.askMotivo(t, box) : this.act(t, action, box)),
        }),
      );
    }
    return box;
  }

  askMotivo(t, box) {
    const input = el('input', { type: 'text', placeholder: 'motivo (3–500)', 'aria-label': 'Motivo', minlength: 3, maxlength: 500 });
    const confirm = el('button', { type: 'button', 'data-action': 'confirm-cancel', text: 'confirmar', onclick: () => this.act(t, 'cancel', box, input.value.trim()) });
    clear(box).append(input, confirm);
    input.focus();
  }

  async act(t, action, box, motivo) {
    for (const b of box.querySelectorAll('button')) b.disabled = true;
    try {
      const body = motivo ? { motivo } : {};
      const tarea = await this.api.request('POST', `/api/v1/tasks/${t.id}/${action}`, { body, wait: ACTION_WAIT_S, idempotent: true });
      this.error.textContent = '';
      this.apply(tarea);
    } catch (e) {
      this.error.textContent = `${t.codigo}: ${e.message}`;
      for (const b of box.querySelectorAll('button')) b.disabled = false;
    }
  }

  apply(tarea, fresh = false) {
    this.upsert(tarea, { fresh });
    this.map.upsertTask({
      tarea_id: tarea.id,
      lat: tarea.ubicacion_lat,
      lng: tarea.ubicacion_lon,
      prioridad: tarea.prioridad,
      estado: tarea.estado,
      codigo: tarea.codigo,
      titulo: tarea.titulo,
    });
  }

  // Live events of domain.md §8.
  onEvent(frame) {
    const data = frame.data || {};
    switch (frame.event_type) {
      case 'task_created':
        if (data.tarea) this.apply(data.tarea, true);
        break;
      case 'task_updated':
        if (data.tarea) this.apply(data.tarea);
        break;
      case 'task_status_changed': {
        const known = this.tasks.get(data.tarea_id);
        if (known) this.apply({ ...known, estado: data.estado_nuevo });
        else if (!ACTIVE.includes(data.estado_nuevo)) this.map.removeTask(data.tarea_id);
        break;
      }
      default:
        break;
    }
  }
}
