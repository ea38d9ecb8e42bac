// The operators' view (nivel 3): GET /api/v1/admin/ops every few seconds
// while the tab is open, and the DLQ with replay and discard.

import { $, el, clear, dateTime, time } from './dom.js';

const REFRESH_MS = 5000;
const DLQ_LIMIT = 100;

export class Ops {
  constructor(api) {
    this.api = api;
    this.timer = null;
    this.dlqBody = $('#dlq-list');
  }

  show(visible) {
    clearInterval(this.timer);
    this.timer = null;
    if (!visible) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    const [ops, dlq] = await Promise.allSettled([
      this.api.request('GET', '/api/v1/admin/ops'),
      this.api.request('GET', `/api/v1/admin/dlq?limit=${DLQ_LIMIT}`),
    ]);
    const failures = [ops, dlq].filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    $('#ops-error').textContent = failures.join(' · ');
    if (ops.status === 'fulfilled') this.renderOps(ops.value);
    if (dlq.status === 'fulfilled') this.renderDlq(dlq.value);
    $('#ops-updated').textContent = time(new Date().toISOString());
  }

  renderOps(ops) {
    const jobs = ops.jobs;
    table($('#ops-jobs-status'), ['Estado', 'Trabajos'], jobs ? Object.entries(jobs.by_status) : null);
    const statuses = jobs ? [...new Set(Object.values(jobs.by_kind).flatMap((s) => Object.keys(s)))].sort() : [];
    table(
      $('#ops-jobs-kind'),
      ['Tipo', ...statuses],
      jobs ? Object.entries(jobs.by_kind).map(([kind, by]) => [kind, ...statuses.map((s) => by[s] ?? 0)]) : null,
    );
    const lag = ops.consumer_lag;
    table(
      $('#ops-lag'),
      ['Grupo', 'Pendientes', 'Sin ack', 'Retraso', 'Reentregas'],
      lag
        ? Object.entries(lag).map(([group, l]) =>
            l ? [group, l.pending, l.ack_pending, l.lag, l.redelivered] : [group, 'sin datos', '', '', ''],
          )
        : null,
    );
    const ws = ops.websocket;
    table(
      $('#ops-ws'),
      ['Figura', 'Valor'],
      ws
        ? [
            ['Conexiones', ws.connections],
            ['Usuarios', ws.users],
            ['Tópicos', ws.topics],
            ['Cola total / máx.', `${ws.queue_depth?.total ?? '—'} / ${ws.queue_depth?.max ?? '—'}`],
            ['Eventos retenidos', ws.history?.events],
          ]
        : null,
    );
    const tg = ops.telegram;
    table($('#ops-telegram'), ['Estado', 'Envíos'], tg ? [...Object.entries(tg.by_status), ['total', tg.total]] : null);
    $('#dlq-size').textContent = ops.dlq ? String(ops.dlq.messages) : '?';
  }

  renderDlq(jobs) {
    clear(this.dlqBody);
    if (!jobs.length) {
      this.dlqBody.append(el('tr', {}, el('td', { colspan: 6, class: 'note', text: 'La DLQ está vacía.' })));
      return;
    }
    for (const job of jobs) {
      // An undecodable DLQ message has no job id: its DLQ sequence names it.
      const id = String(job.job_id ?? job.dlq?.seq ?? '?');
      const error = job.error ? `${job.error.error}: ${job.error.message}` : '';
      const buttons = el('div', { class: 'actions' });
      for (const [op, label] of [['replay', 'reintentar'], ['discard', 'descartar']]) {
        buttons.append(el('button', { type: 'button', 'data-dlq': op, text: label, onclick: () => this.act(id, op, buttons) }));
      }
      this.dlqBody.append(
        el(
          'tr',
          { class: 'dlq', 'data-job-id': id },
          el('td', { title: id, text: id.slice(0, 8) }),
          el('td', { text: job.kind }),
          el('td', { class: 'num', text: `${job.attempts}/${job.max_attempts}` }),
          el('td', { text: error }),
          el('td', { text: dateTime(job.finished_at) }),
          el('td', {}, buttons),
        ),
      );
    }
  }

  async act(id, op, buttons) {
    for (const b of buttons.querySelectorAll('button')) b.disabled = true;
    const message = $('#dlq-message');
    try {
      const after = await this.api.request('POST', `/api/v1/admin/dlq/${encodeURIComponent(id)}/${op}`);
      message.textContent = op === 'replay' ? `Trabajo ${id} reencolado (${after.status}).` : `Trabajo ${id} descartado.`;
      message.dataset.jobId = id;
      message.dataset.op = op;
      await this.refresh();
    } catch (e) {
      message.textContent = `${id}: ${e.message}`;
      for (const b of buttons.querySelectorAll('button')) b.disabled = false;
    }
  }
}

// `rows` null: the source did not answer in time (the ops view says null).
function table(node, head, rows) {
  clear(node);
  node.append(el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { text: h })))));
  const body = el('tbody');
  if (!rows) body.append(el('tr', {}, el('td', { colspan: head.length, class: 'note', text: 'sin datos (la fuente no respondió)' })));
  else if (!rows.length) body.append(el('tr', {}, el('td', { colspan: head.length, class: 'note', text: 'nada' })));
  for (const row of rows || []) {
    body.append(el('tr', {}, ...row.map((v, i) => el('td', { class: i > 0 && typeof v === 'number' ? 'num' : undefined, text: v ?? '—' }))));
  }
  node.append(body);
}
