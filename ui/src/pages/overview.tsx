import { useState } from 'preact/hooks';
import { type Alert, get, type MetricsResponse, parseId, paths, type Rule, type Vm } from '../api.js';
import { type ChartSeries, TimeChart } from '../chart.js';
import { Badge, Empty, ErrorBox, Section, Segmented } from '../components.js';
import { ago, bitrate, isoDurationSeconds, metricValue, operatorSign, utc, utcTime } from '../format.js';
import { usePoll } from '../hooks.js';
import { useSession } from '../session.js';

/** Chart ranges: each with an interval that gives a few hundred points (sub-minute ones read the raw samples). */
const RANGES = [
  { label: '15 min', seconds: 900, interval: 'PT5S', step: 5 },
  { label: '1 h', seconds: 3600, interval: 'PT15S', step: 15 },
  { label: '6 h', seconds: 21_600, interval: 'PT5M', step: 300 },
  { label: '24 h', seconds: 86_400, interval: 'PT15M', step: 900 },
] as const;
type Range = (typeof RANGES)[number];

const NETWORK = ['Network In Total', 'Network Out Total'] as const;
const COLORS = { 'Network In Total': '#5fb3f0', 'Network Out Total': '#7ee08a' } as const;
const THRESHOLD_COLORS = ['#ff6b6b', '#f0a03c', '#d58cf0', '#f0e05a'];

/** Whether a rule's scopes cover a VM (its id, its resource group, or its subscription). */
export function ruleCovers(rule: Rule, vm: Vm): boolean {
  const id = vm.id.toLowerCase();
  return rule.properties.scopes.some((scope) => {
    const s = scope.toLowerCase().replace(/\/$/, '');
    return id === s || id.startsWith(`${s}/`);
  });
}

/**
 * A rule's static threshold on a network metric, as bits per second, so that it can be drawn on the chart: a `Total`
 * over the window is spread over the window; Average, Minimum and Maximum are of one-second samples already.
 */
function thresholdBitsPerSecond(rule: Rule, metric: string): { value: number; label: string } | null {
  for (const c of rule.properties.criteria.allOf) {
    if (c.criterionType !== 'StaticThresholdCriterion' || c.metricName !== metric || c.threshold === undefined)
      continue;
    const perSecond =
      c.timeAggregation === 'Total'
        ? c.threshold / Math.max(1, isoDurationSeconds(rule.properties.windowSize))
        : ['Average', 'Maximum', 'Minimum'].includes(c.timeAggregation)
          ? c.threshold
          : null;
    if (perSecond === null) continue;
    return {
      value: perSecond * 8,
      label: `${rule.name}: ${c.timeAggregation} ${metric.replace(' Total', '')} ${operatorSign(c.operator)} ${metricValue(metric, c.threshold)}${c.timeAggregation === 'Total' ? ` / ${rule.properties.windowSize}` : ''}`,
    };
  }
  return null;
}

function VmCard({ vm, rules, range }: { vm: Vm; rules: Rule[]; range: Range }) {
  const { can } = useSession();
  const metrics = usePoll(
    async () => {
      // End at the last whole interval that the agents' 5-second batches have surely filled.
      const end = Math.floor((Date.now() / 1000 - 6) / range.step) * range.step;
      const start = end - range.seconds;
      const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
      const query = [
        `metricnames=${encodeURIComponent(NETWORK.join(','))}`,
        'aggregation=Total',
        `interval=${range.interval}`,
        `timespan=${encodeURIComponent(`${iso(start)}/${iso(end)}`)}`,
      ].join('&');
      return get<MetricsResponse>(paths.metrics(vm.id, query));
    },
    5000,
    [vm.id, range.interval],
  );

  const agent = vm.properties.agent;
  const addresses = vm.properties.networkProfile.networkInterfaces.flatMap((n) => n.ipAddresses ?? []);
  const covering = rules.filter((r) => r.properties.enabled && ruleCovers(r, vm));

  let x: number[] = [];
  const series: ChartSeries[] = [];
  if (metrics.data) {
    for (const metric of NETWORK) {
      const points = metrics.data.value.find((v) => v.name.value === metric)?.timeseries[0]?.data ?? [];
      if (x.length === 0) x = points.map((p) => Date.parse(p.timeStamp) / 1000);
      series.push({
        label: `${metric.replace(' Total', '')} (bit/s)`,
        color: COLORS[metric],
        values: points.map((p) => (p.total === undefined ? null : (p.total * 8) / range.step)),
        width: 2,
      });
    }
    let i = 0;
    for (const rule of covering) {
      for (const metric of NETWORK) {
        const t = thresholdBitsPerSecond(rule, metric);
        if (!t) continue;
        series.push({
          label: t.label,
          color: THRESHOLD_COLORS[i++ % THRESHOLD_COLORS.length] ?? '#ff6b6b',
          values: x.map(() => t.value),
          dash: [8, 5],
        });
      }
    }
  }
  const last = (label: string) => {
    const values = series.find((s) => s.label.startsWith(label))?.values ?? [];
    for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i] ?? null;
    return null;
  };

  return (
    <article class="card vm-card" data-vm={vm.name}>
      <header class="vm-head">
        <div>
          <h3>{vm.name}</h3>
          <div class="muted small">
            {vm.location} · {parseId(vm.id).resourceGroup} · {addresses.join(', ') || 'no addresses'}
          </div>
        </div>
        <div class="vm-state">
          <Badge>{agent?.status ?? 'No agent'}</Badge>
          <span class="muted small" title={utc(agent?.lastSeen)}>
            {agent ? `seen ${ago(agent.lastSeen)}` : ''}
          </span>
        </div>
      </header>
      <div class="vm-rates">
        <span>
          in <strong data-rate="in">{bitrate(last('Network In'))}</strong>
        </span>
        <span>
          out <strong data-rate="out">{bitrate(last('Network Out'))}</strong>
        </span>
        <span class="muted small">
          {covering.length} rule{covering.length === 1 ? '' : 's'} watching
        </span>
        {can('capture:write') ? (
          <a class="button" data-action="capture-vm" href={`#/captures/${encodeURIComponent(vm.name)}`}>
            Capture now…
          </a>
        ) : null}
      </div>
      <ErrorBox error={metrics.error} title="Metrics" />
      {metrics.data ? (
        x.length > 0 ? (
          <TimeChart
            title={`${vm.name} network in/out`}
            x={x}
            series={series}
            yFormat={(v) => bitrate(v)}
            height={200}
          />
        ) : (
          <Empty>No samples in this range yet: the agent sends them every 5 seconds.</Empty>
        )
      ) : (
        <div class="chart-placeholder muted">Loading metrics…</div>
      )}
    </article>
  );
}

export function RecentAlerts({ alerts, limit }: { alerts: Alert[]; limit: number }) {
  if (alerts.length === 0) return <Empty>No alerts in the last 24 hours. Quiet night.</Empty>;
  return (
    <ul class="alert-list">
      {alerts.slice(0, limit).map((a) => {
        const e = a.properties.essentials;
        const c = a.properties.context.criteria[0];
        return (
          <li key={a.id} class="alert-row" data-alert-rule={a.name}>
            <Badge>{e.monitorCondition}</Badge>
            <span class="mono" title={utc(e.startDateTime)}>
              {utcTime(e.startDateTime)} UTC
            </span>
            <span class="muted small">{ago(e.startDateTime)}</span>
            <span class="sev">{e.severity}</span>
            <a href="#/alerts">
              <strong>{a.name}</strong>
            </a>
            <span>on {e.targetResourceName}</span>
            {c ? (
              <span class="muted">
                {c.timeAggregation} {c.metricName} {metricValue(c.metricName, c.metricValue)} {operatorSign(c.operator)}{' '}
                {metricValue(c.metricName, c.threshold)}
              </span>
            ) : null}
          </li>
        );
      })}
    </ul>
  );
}

export function OverviewPage() {
  const { sub } = useSession();
  const [range, setRange] = useState<Range>(RANGES[0]);
  const vms = usePoll(() => get<{ value: Vm[] }>(paths.vms(sub)), 5000, [sub]);
  const rules = usePoll(() => get<{ value: Rule[] }>(paths.rules(sub)), 15_000, [sub]);
  const alerts = usePoll(() => get<{ value: Alert[] }>(paths.alerts(sub, '1d')), 5000, [sub]);
  const list = vms.data?.value ?? [];
  const connected = list.filter((v) => v.properties.agent?.status === 'Connected').length;
  const firing = (alerts.data?.value ?? []).filter((a) => a.properties.essentials.monitorCondition === 'Fired');

  return (
    <div class="overview">
      <div class="summary-strip">
        <div class="stat">
          <span class="stat-value">{vms.data ? `${connected}/${list.length}` : '…'}</span>
          <span class="stat-label">VMs connected</span>
        </div>
        <div class={`stat ${firing.length ? 'stat-bad' : ''}`}>
          <span class="stat-value">{alerts.data ? firing.length : '…'}</span>
          <span class="stat-label">alerts firing</span>
        </div>
        <div class="stat">
          <span class="stat-value">
            {rules.data ? rules.data.value.filter((r) => r.properties.enabled).length : '…'}
          </span>
          <span class="stat-label">rules enabled</span>
        </div>
      </div>

      <Section title="Recent alerts (24 h)" actions={<a href="#/alerts">All alerts →</a>}>
        <ErrorBox error={alerts.error} />
        {alerts.data ? <RecentAlerts alerts={alerts.data.value} limit={6} /> : <div class="muted">Loading…</div>}
      </Section>

      <Section
        title="Virtual machines"
        actions={
          <Segmented
            label="Chart range"
            options={RANGES.map((r) => r.label)}
            value={range.label}
            onChange={(label) => setRange(RANGES.find((r) => r.label === label) ?? RANGES[0])}
          />
        }
      >
        <ErrorBox error={vms.error} />
        {vms.data || vms.error ? null : <div class="muted">Loading VMs…</div>}
        <p class="muted small">
          Network in/out in bit/s per {range.interval.replace('PT', '').toLowerCase()} interval, UTC. Dashed lines: the
          thresholds of enabled rules watching the VM (a Total over a window drawn as its average rate).
        </p>
        {vms.data && list.length === 0 ? (
          <Empty>
            No VMs yet. Start an agent on a host: <code>tripcap agent --server URL --token TOKEN --name web-1</code>{' '}
            (the exact line is printed when the server starts).
          </Empty>
        ) : null}
        <div class="vm-grid">
          {list.map((vm) => (
            <VmCard key={vm.id} vm={vm} rules={rules.data?.value ?? []} range={range} />
          ))}
        </div>
      </Section>
    </div>
  );
}
