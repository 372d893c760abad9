import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assertName, assertSubscription, idKey, vmResourceId } from '../../lib/arm-id.js';
import { badRequest, notFound } from '../../lib/errors.js';
import { type MetricsQueryParams, queryMetrics } from '../../monitor/metrics-query.js';
import type { MetricsStore } from '../../monitor/metrics-store.js';
import type { CaptureRef } from '../../watcher/service.js';
import { type AppOptions, requestBaseUrl } from '../app.js';

type Params = Record<string, string>;

const SUB = '/subscriptions/:subscriptionId';
const RG = `${SUB}/resourceGroups/:resourceGroupName`;
const WATCHERS = `${RG}/providers/Microsoft.Network/networkWatchers`;
const CAPTURE = `${WATCHERS}/:networkWatcherName/packetCaptures/:packetCaptureName`;
const OPERATIONS = `${SUB}/providers/Microsoft.Network/locations/:location`;
const DEFAULT_PAGE = 100;

function subscriptionOf(params: Params): string {
  // Subscription ids are GUIDs, which ARM compares case-insensitively: keep one spelling.
  return assertSubscription(params.subscriptionId ?? '').toLowerCase();
}

function watcherRef(params: Params): Omit<CaptureRef, 'captureName'> {
  return {
    subscriptionId: subscriptionOf(params),
    resourceGroup: assertName(params.resourceGroupName ?? '', 'Resource group'),
    watcherName: assertName(params.networkWatcherName ?? '', 'Network watcher name'),
  };
}

function captureRef(params: Params): CaptureRef {
  return { ...watcherRef(params), captureName: assertName(params.packetCaptureName ?? '', 'Packet capture name') };
}

function apiVersion(request: FastifyRequest): string {
  const v = (request.query as Record<string, unknown>)['api-version'];
  return typeof v === 'string' && /^[0-9a-z.-]{1,32}$/i.test(v) ? v : '2024-05-01';
}

function operationUrls(request: FastifyRequest, subscriptionId: string, location: string, operationId: string) {
  const base = `${requestBaseUrl(request)}/subscriptions/${subscriptionId}/providers/Microsoft.Network/locations/${location}`;
  const q = `?api-version=${apiVersion(request)}`;
  return {
    asyncOperation: `${base}/operations/${operationId}${q}`,
    location: `${base}/operationResults/${operationId}${q}`,
  };
}

function pageOf(request: FastifyRequest) {
  const q = request.query as Record<string, unknown>;
  const skip = Number(q.$skiptoken ?? q.$skipToken ?? 0);
  const top = Number(q.$top ?? DEFAULT_PAGE);
  if (!Number.isInteger(skip) || skip < 0)
    throw badRequest('InvalidSkipToken', '$skiptoken must come from a nextLink.');
  if (!Number.isInteger(top) || top < 1 || top > 1000)
    throw badRequest('InvalidTop', '$top must be a whole number from 1 to 1000.');
  return { skip, top };
}

function nextLink(request: FastifyRequest, page: { skip: number; top: number }): string {
  const url = new URL(request.url, requestBaseUrl(request));
  url.searchParams.set('$skiptoken', String(page.skip + page.top));
  url.searchParams.set('$top', String(page.top));
  url.searchParams.set('api-version', apiVersion(request));
  return url.toString();
}

export function registerArmRoutes(
  app: FastifyInstance,
  { captures, db, metrics }: AppOptions & { metrics: MetricsStore },
) {
  const read = { config: { permission: 'read' as const } };
  const writeCapture = { config: { permission: 'capture:write' as const } };
  const writeResource = { config: { permission: 'resource:write' as const } };

  // ---- network watchers ----
  app.get(`${SUB}/providers/Microsoft.Network/networkWatchers`, read, async (request) => ({
    value: await captures.listWatchers(subscriptionOf(request.params as Params)),
  }));
  app.get(WATCHERS, read, async (request) => {
    const p = request.params as Params;
    return {
      value: await captures.listWatchers(subscriptionOf(p), assertName(p.resourceGroupName ?? '', 'Resource group')),
    };
  });
  app.get(`${WATCHERS}/:networkWatcherName`, read, async (request) => {
    const w = watcherRef(request.params as Params);
    return captures.getWatcher(w.subscriptionId, w.resourceGroup, w.watcherName);
  });
  app.put(`${WATCHERS}/:networkWatcherName`, writeResource, async (request, reply) => {
    const p = request.params as Params;
    const { created, watcher } = await captures.putWatcher(
      subscriptionOf(p),
      p.resourceGroupName ?? '',
      p.networkWatcherName ?? '',
      request.body,
    );
    return reply.status(created ? 201 : 200).send(watcher);
  });
  app.delete(`${WATCHERS}/:networkWatcherName`, writeResource, async (request, reply) => {
    const w = watcherRef(request.params as Params);
    const deleted = await captures.deleteWatcher(w.subscriptionId, w.resourceGroup, w.watcherName);
    return reply.status(deleted ? 200 : 204).send();
  });

  // ---- packet captures ----
  app.put(CAPTURE, writeCapture, async (request, reply) => {
    const ref = captureRef(request.params as Params);
    const { capture, operationId, location } = await captures.createCapture(ref, request.body);
    const urls = operationUrls(request, ref.subscriptionId, location, operationId);
    return reply
      .status(201)
      .header('Azure-AsyncOperation', urls.asyncOperation)
      .header('Retry-After', '1')
      .send(capture);
  });
  app.get(`${WATCHERS}/:networkWatcherName/packetCaptures`, read, async (request) => {
    const p = request.params as Params;
    const page = pageOf(request);
    const { value, more } = await captures.listCaptures(
      {
        subscriptionId: subscriptionOf(p),
        resourceGroup: assertName(p.resourceGroupName ?? '', 'Resource group'),
        watcherName: assertName(p.networkWatcherName ?? '', 'Network watcher name'),
      },
      page,
    );
    return more ? { value, nextLink: nextLink(request, page) } : { value };
  });
  app.get(CAPTURE, read, async (request) => captures.getCapture(captureRef(request.params as Params)));
  app.delete(CAPTURE, writeCapture, async (request, reply) => {
    const deleted = await captures.deleteCapture(captureRef(request.params as Params));
    return reply.status(deleted ? 200 : 204).send();
  });
  app.post(`${CAPTURE}/stop`, writeCapture, async (request, reply) => {
    const ref = captureRef(request.params as Params);
    const { operationId, location } = await captures.stopCapture(ref);
    if (!operationId) return reply.status(200).send();
    const urls = operationUrls(request, ref.subscriptionId, location, operationId);
    return reply
      .status(202)
      .header('Location', urls.location)
      .header('Azure-AsyncOperation', urls.asyncOperation)
      .header('Retry-After', '1')
      .send();
  });
  app.get(`${CAPTURE}/report`, read, async (request) => captures.getReport(captureRef(request.params as Params)));
  app.post(`${CAPTURE}/queryStatus`, read, async (request) =>
    captures.queryStatus(captureRef(request.params as Params)),
  );
  app.get(`${CAPTURE}/files/:seq`, { config: { permission: 'pcap:download' } }, async (request, reply) => {
    const p = request.params as Params;
    const seq = Number(p.seq);
    if (!Number.isInteger(seq) || seq < 1) throw badRequest('InvalidFileNumber', 'File numbers start at 1.');
    const file = await captures.openFile(captureRef(p), seq);
    return reply
      .header('Content-Type', 'application/vnd.tcpdump.pcap')
      .header('Content-Length', String(file.size))
      .header('Content-Disposition', `attachment; filename="${file.fileName}"`)
      .header('x-tripcap-sha256', file.sha256)
      .send(file.stream);
  });

  // The local blob store's `storagePath` links: the same files, by blob name.
  app.get('/blobs/network-watcher-logs/*', { config: { permission: 'pcap:download' } }, async (request, reply) => {
    const blob = await captures.openBlob(String((request.params as Params)['*']));
    return reply
      .header('Content-Type', 'application/vnd.tcpdump.pcap')
      .header('Content-Length', String(blob.size))
      .send(blob.stream);
  });

  // ---- long-running operations (ARM async contract) ----
  app.get(`${OPERATIONS}/operations/:operationId`, read, async (request) => {
    const p = request.params as Params;
    subscriptionOf(p);
    return captures.getOperation(String(p.operationId));
  });
  app.get(`${OPERATIONS}/operationResults/:operationId`, read, async (request, reply) => {
    const p = request.params as Params;
    const sub = subscriptionOf(p);
    const op = await captures.getOperation(String(p.operationId));
    if (op.status === 'InProgress') {
      const urls = operationUrls(request, sub, String(p.location), op.id);
      return reply.status(202).header('Location', urls.location).header('Retry-After', '1').send();
    }
    if (op.status === 'Failed') return reply.status(400).send({ error: op.error });
    return reply.status(200).send();
  });

  // ---- virtual machines (the hosts agents registered) ----
  const vmList = async (request: FastifyRequest) => {
    const p = request.params as Params;
    const rg = p.resourceGroupName ? assertName(p.resourceGroupName, 'Resource group') : undefined;
    return { value: await captures.listVms(subscriptionOf(p), rg) };
  };
  app.get(`${SUB}/providers/Microsoft.Compute/virtualMachines`, read, vmList);
  app.get(`${RG}/providers/Microsoft.Compute/virtualMachines`, read, vmList);
  app.get(
    `${RG}/providers/Microsoft.Compute/virtualMachines/:vmName`,
    read,
    async (request: FastifyRequest, _reply: FastifyReply) => {
      const p = request.params as Params;
      return captures.getVm(
        subscriptionOf(p),
        assertName(p.resourceGroupName ?? '', 'Resource group'),
        assertName(p.vmName ?? '', 'Virtual machine name'),
      );
    },
  );

  // ---- a VM's flight recorder (tripcap's extension) ----
  const recorderPath = `${RG}/providers/Microsoft.Compute/virtualMachines/:vmName/flightRecorder/default`;
  const vmOf = (request: FastifyRequest) => {
    const p = request.params as Params;
    return [
      subscriptionOf(p),
      assertName(p.resourceGroupName ?? '', 'Resource group'),
      assertName(p.vmName ?? '', 'Virtual machine name'),
    ] as const;
  };
  app.get(recorderPath, read, async (request) => captures.getFlightRecorder(...vmOf(request)));
  app.put(recorderPath, writeResource, async (request) => captures.putFlightRecorder(...vmOf(request), request.body));

  // ---- host metrics, in Azure Monitor's "Metrics - List" shape ----
  app.get(
    `${RG}/providers/Microsoft.Compute/virtualMachines/:vmName/providers/Microsoft.Insights/metrics`,
    read,
    async (request: FastifyRequest) => {
      const p = request.params as Params;
      const resourceGroup = assertName(p.resourceGroupName ?? '', 'Resource group');
      const name = assertName(p.vmName ?? '', 'Virtual machine name');
      const id = vmResourceId({ subscriptionId: subscriptionOf(p), resourceGroup, name });
      const vm = await db
        .selectFrom('vms')
        .select(['key', 'id', 'location'])
        .where('key', '=', idKey(id))
        .executeTakeFirst();
      if (!vm) {
        throw notFound(
          'ResourceNotFound',
          `Virtual machine '${name}' in resource group '${resourceGroup}' was not found.`,
        );
      }
      const q = request.query as Record<string, unknown>;
      const params: MetricsQueryParams = {};
      for (const key of ['metricnames', 'aggregation', 'interval', 'timespan'] as const) {
        const value = q[key];
        if (Array.isArray(value)) throw badRequest('BadRequest', `Give '${key}' once.`, key);
        if (value !== undefined) params[key] = String(value);
      }
      return queryMetrics(metrics, vm, params);
    },
  );
}
