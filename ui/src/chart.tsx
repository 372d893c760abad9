import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  values: Array<number | null>;
  /** Dashed: thresholds. */
  dash?: number[];
  width?: number;
}

/** Marks on the time axis: a shaded window and a line at a moment (an alert's window and when it fired). */
export interface ChartMarks {
  window?: { start: number; end: number; label: string };
  moment?: { at: number; label: string };
}

export interface TimeChartProps {
  /** Unix seconds. */
  x: number[];
  series: ChartSeries[];
  yFormat: (value: number) => string;
  height?: number;
  marks?: ChartMarks;
  /** Unix seconds; by default the data's. */
  xRange?: [number, number];
  /** What the chart shows, for screen readers and tests. */
  title: string;
}

const GRID = 'rgba(160, 180, 200, 0.12)';
const AXIS = '#8fa1b3';

/** Time ticks as 24-hour UTC: seconds when the view is short, the date when it spans days. */
function utcTicks(u: uPlot, splits: number[]): string[] {
  const span = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
  return splits.map((v) => {
    const iso = new Date(v * 1000).toISOString();
    if (span > 86_400) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return span < 600 ? iso.slice(11, 19) : iso.slice(11, 16);
  });
}

/** Times on the axis and in the legend in UTC: the console never shows local time. */
const toUtc = (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');

function drawMarks(u: uPlot, marks: ChartMarks | undefined) {
  if (!marks) return;
  const { ctx, bbox } = u;
  ctx.save();
  ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
  // uPlot leaves the alignment of its last axis label on the context.
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  if (marks.window) {
    const x0 = u.valToPos(marks.window.start, 'x', true);
    const x1 = u.valToPos(marks.window.end, 'x', true);
    const left = Math.max(bbox.left, Math.min(x0, x1));
    const right = Math.min(bbox.left + bbox.width, Math.max(x0, x1));
    if (right > left) {
      ctx.fillStyle = 'rgba(240, 160, 60, 0.16)';
      ctx.fillRect(left, bbox.top, right - left, bbox.height);
      ctx.fillStyle = '#f0a03c';
      ctx.fillText(marks.window.label, left + 4 * devicePixelRatio, bbox.top + 14 * devicePixelRatio);
    }
  }
  if (marks.moment) {
    const x = u.valToPos(marks.moment.at, 'x', true);
    if (x >= bbox.left && x <= bbox.left + bbox.width) {
      ctx.strokeStyle = '#ff6b6b';
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      // Beside the line, on the side with room, at the foot of the plot where the data rarely is.
      const width = ctx.measureText(marks.moment.label).width;
      const right = x + 4 * devicePixelRatio + width <= bbox.left + bbox.width;
      ctx.fillStyle = '#ff6b6b';
      ctx.fillText(
        marks.moment.label,
        right ? x + 4 * devicePixelRatio : x - 4 * devicePixelRatio - width,
        bbox.top + bbox.height - 6 * devicePixelRatio,
      );
    }
  }
  ctx.restore();
}

/** A uPlot time chart that follows its container's width and takes new data without being rebuilt. */
export function TimeChart(props: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const marksRef = useRef(props.marks);
  marksRef.current = props.marks;
  const shape = props.series.map((s) => `${s.label}|${s.color}`).join(',');
  const height = props.height ?? 220;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      tzDate: toUtc,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, ...(props.xRange ? { range: () => props.xRange as [number, number] } : {}) },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: AXIS, grid: { stroke: GRID }, ticks: { stroke: GRID }, values: utcTicks },
        {
          stroke: AXIS,
          grid: { stroke: GRID },
          ticks: { stroke: GRID },
          size: 88,
          values: (_u, splits) => splits.map((v) => props.yFormat(v)),
        },
      ],
      series: [
        { label: 'time (UTC)', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          ...(s.dash ? { dash: s.dash } : {}),
          points: { show: false },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : props.yFormat(v)),
        })),
      ],
      hooks: { draw: [(u) => drawMarks(u, marksRef.current)] },
    };
    const u = new uPlot(opts, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, height, props.xRange?.[0], props.xRange?.[1]]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return <div class="chart" ref={box} role="img" aria-label={props.title} data-chart={props.title} />;
}
