import path from 'node:path';
import { parseResourceId, parseVmId } from '../lib/arm-id.js';
import { badRequest } from '../lib/errors.js';
import { isObject } from '../lib/json.js';
import { type CaptureFilter, hasControlCharacters, parseFilters, quoteForMessage } from './filters.js';

export type OsType = 'Linux' | 'Windows';

export interface PacketCaptureBodyOptions {
  /** The target VM's OS: decides how filePath/localPath are read. */
  osType: OsType;
  /** Local capture files must lie under this folder on the VM (Azure: `/var/captures` on Linux). */
  captureRoot: string;
}

export interface CaptureSettings {
  fileCount: number;
  fileSizeInBytes: number;
  sessionTimeLimitInSeconds: number;
}

export interface PacketCaptureStorageLocation {
  storageId?: string;
  storagePath?: string;
  filePath?: string;
  localPath?: string;
}

export interface PacketCaptureInput {
  target: string; // as given
  targetType: 'AzureVM';
  bytesToCapturePerPacket: number;
  totalBytesPerSession: number;
  timeLimitInSeconds: number;
  storageLocation: PacketCaptureStorageLocation;
  filters: CaptureFilter[];
  continuousCapture: boolean;
  captureSettings?: CaptureSettings;
  preTriggerSeconds: number;
  /** tripcap's own: pcapng instead of classic pcap (absent: pcap). */
  fileFormat?: 'pcapng';
  /** tripcap's own: text for the pcapng file's section header (e.g. the alert that started the capture). */
  comment?: string;
  /** The normalised absolute local file on the VM when filePath/localPath was given. */
  localFile?: string;
}

export const DEFAULT_CAPTURE_ROOT = '/var/captures';

/** Defaults and ranges from Azure's PacketCaptureParameters / PacketCaptureSettings (network watcher REST spec). */
export const PACKET_CAPTURE_LIMITS = Object.freeze({
  bytesToCapturePerPacket: { min: 0, max: 4294967295, default: 0 },
  totalBytesPerSession: { min: 0, max: 4294967295, default: 1073741824 },
  timeLimitInSeconds: { min: 0, max: 18000, default: 18000 },
  fileCount: { min: 0, max: 10000, default: 10 },
  fileSizeInBytes: { min: 0, max: 4294967295, default: 104857600 },
  sessionTimeLimitInSeconds: { min: 0, max: 604800, default: 86400 },
  /** tripcap's own: seconds of flight-recorder traffic from before the capture started. */
  preTriggerSeconds: { min: 0, max: 3600, default: 0 },
});

/** tcpdump's largest snapshot length; it is also what "0 = whole packet" means to tcpdump. */
export const MAX_SNAPLEN = 262144;

const MAX_STRING_LENGTH = 1024;
/** The longest `comment`: room for an alert payload. */
export const MAX_COMMENT_LENGTH = 65_536;
const MAX_SCOPE_ENTRIES = 1000;

/** The `tcpdump -s` value for Azure's bytesToCapturePerPacket (0 = whole packet). */
export function snaplenFor(bytesToCapturePerPacket: number): number {
  return bytesToCapturePerPacket === 0 || bytesToCapturePerPacket > MAX_SNAPLEN ? MAX_SNAPLEN : bytesToCapturePerPacket;
}

/** Validates the body of PacketCaptures_Create (`{ properties: PacketCaptureParameters }`). Read-only and unknown
 * properties are ignored (ARM clients send GET results back); a known property of the wrong type is a 400. */
export function parsePacketCaptureBody(body: unknown, opts: PacketCaptureBodyOptions): PacketCaptureInput {
  const properties = optionalObject(isObject(body) ? body.properties : undefined, 'properties');
  if (!properties) {
    throw badRequest(
      'InvalidRequestFormat',
      'The body must be a JSON object with a "properties" object holding the packet capture parameters.',
      'properties',
    );
  }
  const targetType = parseTargetType(properties.targetType);
  const target = parseTarget(properties.target);
  parseScope(properties.scope);
  const continuousCapture = optionalBoolean(properties.continuousCapture, 'continuousCapture') ?? false;
  const { storageLocation, localFile } = parseStorageLocation(properties.storageLocation, continuousCapture, opts);
  const settingsInput = optionalObject(properties.captureSettings, 'captureSettings');

  return {
    target,
    targetType,
    bytesToCapturePerPacket: limit(properties, 'bytesToCapturePerPacket'),
    // Azure's spec allows 0 for both without saying what it means; a limit of 0 bytes or 0 seconds would record
    // nothing, so 0 means the default here, as an absent value does.
    totalBytesPerSession: limit(properties, 'totalBytesPerSession', { zeroMeansDefault: true }),
    timeLimitInSeconds: limit(properties, 'timeLimitInSeconds', { zeroMeansDefault: true }),
    storageLocation,
    filters: parseFilters(properties.filters),
    continuousCapture,
    // Only meaningful for continuous capture; kept when sent so that it can be echoed back.
    ...(continuousCapture || settingsInput ? { captureSettings: parseCaptureSettings(settingsInput ?? {}) } : {}),
    ...parsePreTrigger(properties, continuousCapture),
    ...parseFileFormat(properties),
    ...(localFile ? { localFile } : {}),
  };
}

function parsePreTrigger(properties: Record<string, unknown>, continuousCapture: boolean) {
  const preTriggerSeconds = limit(properties, 'preTriggerSeconds');
  if (preTriggerSeconds > 0 && continuousCapture) {
    throw badRequest(
      'InvalidPreTrigger',
      'preTriggerSeconds cannot be combined with continuousCapture: a ring of files has no single start to put the flight recorder before.',
      'preTriggerSeconds',
    );
  }
  return { preTriggerSeconds };
}

/** `fileFormat` ('pcap' or 'pcapng', any case) and `comment` (pcapng only), tripcap's extensions. */
function parseFileFormat(properties: Record<string, unknown>): Pick<PacketCaptureInput, 'fileFormat' | 'comment'> {
  const format = optionalString(properties.fileFormat, 'fileFormat')?.toLowerCase();
  if (format !== undefined && format !== 'pcap' && format !== 'pcapng') {
    throw badRequest(
      'InvalidFileFormat',
      `fileFormat ${quoteForMessage(String(properties.fileFormat))} is not valid: use 'pcap' (the default) or 'pcapng'.`,
      'fileFormat',
    );
  }
  const comment = properties.comment;
  if (comment !== undefined && comment !== null && typeof comment !== 'string') {
    throw badRequest('InvalidRequestFormat', `comment must be a string, not ${describeType(comment)}.`, 'comment');
  }
  if (typeof comment === 'string' && (comment.length > MAX_COMMENT_LENGTH || comment.includes('\0'))) {
    throw badRequest(
      'InvalidRequestFormat',
      `comment must be text of at most ${MAX_COMMENT_LENGTH} characters without NUL.`,
      'comment',
    );
  }
  return {
    ...(format === 'pcapng' ? { fileFormat: 'pcapng' as const } : {}),
    ...(typeof comment === 'string' && comment !== '' ? { comment } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Target

function parseTargetType(value: unknown): 'AzureVM' {
  const text = optionalString(value, 'targetType');
  if (text === undefined || text.toLowerCase() === 'azurevm') return 'AzureVM';
  if (text.toLowerCase() === 'azurevmss') {
    throw badRequest(
      'UnsupportedTargetType',
      "targetType 'AzureVMSS' is not supported yet: tripcap captures on single virtual machines; set targetType to 'AzureVM' and target to a virtual machine id.",
      'targetType',
    );
  }
  throw badRequest(
    'InvalidTargetType',
    `targetType ${quoteForMessage(text)} is not valid: use 'AzureVM'.`,
    'targetType',
  );
}

function parseTarget(value: unknown): string {
  const target = optionalString(value, 'target');
  const example =
    '/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{vm}';
  if (target === undefined) {
    throw badRequest(
      'InvalidTarget',
      `target is required: give the resource id of the virtual machine, ${example}.`,
      'target',
    );
  }
  if (!parseVmId(target)) {
    throw badRequest(
      'InvalidTarget',
      `target ${quoteForMessage(target)} is not a virtual machine resource id: use ${example}.`,
      'target',
    );
  }
  return target;
}

/** `scope` picks scale set instances; with a single VM it must be absent or empty. */
function parseScope(value: unknown): void {
  const scope = optionalObject(value, 'scope');
  if (!scope) return;
  for (const key of ['include', 'exclude'] as const) {
    const where = `scope.${key}`;
    const list = scope[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || list.length > MAX_SCOPE_ENTRIES || !list.every((item) => typeof item === 'string')) {
      throw badRequest('InvalidRequestFormat', `${where} must be an array of scale set instance names.`, where);
    }
    if (list.length > 0) {
      throw badRequest(
        'InvalidScope',
        `${where} applies only to scale sets (targetType 'AzureVMSS'); remove it when capturing on a virtual machine.`,
        where,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Storage location

function parseStorageLocation(
  value: unknown,
  continuousCapture: boolean,
  opts: PacketCaptureBodyOptions,
): { storageLocation: PacketCaptureStorageLocation; localFile?: string } {
  const input = optionalObject(value, 'storageLocation') ?? {};
  const storageId = optionalString(input.storageId, 'storageLocation.storageId');
  const storagePath = optionalString(input.storagePath, 'storageLocation.storagePath');
  const filePath = optionalString(input.filePath, 'storageLocation.filePath');
  const localPath = optionalString(input.localPath, 'storageLocation.localPath');

  // Azure: "storageId: Required if no localPath or filePath is provided" (storagePath alone is not enough).
  if (!storageId && !filePath && !localPath) {
    throw badRequest(
      'InvalidStorageLocation',
      `storageLocation needs a storageId (a storage account id) or a filePath/localPath (a .cap file under ${opts.captureRoot} on the VM).`,
      'storageLocation',
    );
  }
  if (storageId) checkStorageId(storageId);
  if (storagePath) checkStoragePath(storagePath);
  // Azure: filePath "is invalid if 'Continuous Capture' is provided"; localPath is the field for it. Only `true` is
  // refused here: this model stores false for an absent value, and a client may send that back with filePath.
  if (filePath && continuousCapture) {
    throw badRequest(
      'InvalidStorageLocation',
      'storageLocation.filePath cannot be used with continuousCapture: give the file as storageLocation.localPath.',
      'storageLocation.filePath',
    );
  }
  const fromFilePath = filePath ? localCaptureFile(filePath, 'storageLocation.filePath', opts) : undefined;
  const fromLocalPath = localPath ? localCaptureFile(localPath, 'storageLocation.localPath', opts) : undefined;
  if (fromFilePath && fromLocalPath && !samePath(fromFilePath, fromLocalPath, opts.osType)) {
    throw badRequest(
      'InvalidStorageLocation',
      'storageLocation.filePath and storageLocation.localPath name different files: give only one of them.',
      'storageLocation.localPath',
    );
  }
  const localFile = fromLocalPath ?? fromFilePath;
  return {
    storageLocation: {
      ...(storageId ? { storageId } : {}),
      ...(storagePath ? { storagePath } : {}),
      ...(filePath ? { filePath } : {}),
      ...(localPath ? { localPath } : {}),
    },
    ...(localFile ? { localFile } : {}),
  };
}

function checkStorageId(storageId: string): void {
  const id = parseResourceId(storageId);
  const isStorageAccount =
    id?.provider.toLowerCase() === 'microsoft.storage' &&
    id.type.toLowerCase() === 'storageaccounts' &&
    /^[a-z0-9]{3,24}$/i.test(id.name);
  if (!isStorageAccount) {
    throw badRequest(
      'InvalidStorageLocation',
      `storageLocation.storageId ${quoteForMessage(storageId)} is not a storage account id: use /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}.`,
      'storageLocation.storageId',
    );
  }
}

/** An http(s) URL without credentials, query or fragment: it is stored and shown back, and never run. */
function checkStoragePath(storagePath: string): void {
  let url: URL | undefined;
  if (/^https?:\/\/[A-Za-z0-9\-._~%][A-Za-z0-9\-._~:/%]*$/i.test(storagePath)) {
    try {
      url = new URL(storagePath);
    } catch {
      url = undefined;
    }
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.hostname) {
    throw badRequest(
      'InvalidStorageLocation',
      `storageLocation.storagePath ${quoteForMessage(storagePath)} is not valid: use an https:// URL of the blob, e.g. https://{account}.blob.core.windows.net/{container}/{file}.cap, with no query string.`,
      'storageLocation.storagePath',
    );
  }
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const WINDOWS_DEVICE_NAME = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/**
 * Checks a capture file path on the VM and returns it normalised. Every folder and file name below the capture
 * root is restricted to `[A-Za-z0-9._-]`, so the path can reach tcpdump's argv and the file system unquoted.
 */
function localCaptureFile(raw: string, where: string, opts: PacketCaptureBodyOptions): string {
  const windows = opts.osType === 'Windows';
  const paths = windows ? path.win32 : path.posix;
  const root = paths.normalize(opts.captureRoot);
  const invalid = (why: string) =>
    badRequest(
      'InvalidStorageLocation',
      `${where} ${quoteForMessage(raw)} is not valid: ${why}. Use an absolute path to a .cap file under ${root}, with names of letters, digits, '.', '_' and '-'.`,
      where,
    );

  if (hasControlCharacters(raw)) throw invalid('it contains control characters');
  const absolute = windows ? /^[A-Za-z]:[\\/]/.test(raw) : raw.startsWith('/');
  if (!absolute) throw invalid(windows ? 'it must start with a drive, like D:\\' : "it must start with '/'");
  if (raw.split(windows ? /[\\/]/ : '/').includes('..')) throw invalid("it must not contain '..'");

  const file = paths.normalize(raw);
  if (file.endsWith(paths.sep)) throw invalid('it must name a file, not a folder');
  // win32.relative compares case-insensitively, as Windows does.
  const relative = paths.relative(root, file);
  if (!relative || relative.startsWith('..') || paths.isAbsolute(relative)) throw invalid(`it is not under ${root}`);

  const names = relative.split(paths.sep);
  for (const name of names) {
    const unsafe = !SAFE_NAME.test(name) || (windows && (WINDOWS_DEVICE_NAME.test(name) || name.endsWith('.')));
    if (unsafe) throw invalid(`${quoteForMessage(name)} is not an allowed file or folder name`);
  }
  const fileName = names[names.length - 1] ?? '';
  const extension = windows ? fileName.toLowerCase() : fileName;
  if (!extension.endsWith('.cap') || fileName.length <= '.cap'.length)
    throw invalid("the file name must end in '.cap'");
  return file;
}

function samePath(a: string, b: string, osType: OsType): boolean {
  return osType === 'Windows' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

// ---------------------------------------------------------------------------------------------------------------
// Limits

type LimitName = keyof typeof PACKET_CAPTURE_LIMITS;

function limit(
  container: Record<string, unknown>,
  name: LimitName,
  { zeroMeansDefault = false, prefix = '' } = {},
): number {
  const { min, max, default: fallback } = PACKET_CAPTURE_LIMITS[name];
  const where = `${prefix}${name}`;
  const value = container[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number') {
    throw badRequest('InvalidRequestFormat', `${where} must be an integer, not ${describeType(value)}.`, where);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badRequest(
      'InvalidCaptureLimit',
      `${where} ${value} is not valid: use a whole number from ${min} to ${max}${zeroMeansDefault ? ` (0 or absent means ${fallback})` : ''}.`,
      where,
    );
  }
  return zeroMeansDefault && value === 0 ? fallback : value;
}

/** Azure allows 0 for each setting without saying what it means; 0 means the default here, as an absent value. */
function parseCaptureSettings(input: Record<string, unknown>): CaptureSettings {
  const options = { zeroMeansDefault: true, prefix: 'captureSettings.' };
  return {
    fileCount: limit(input, 'fileCount', options),
    fileSizeInBytes: limit(input, 'fileSizeInBytes', options),
    sessionTimeLimitInSeconds: limit(input, 'sessionTimeLimitInSeconds', options),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// JSON shapes

function describeType(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' || type === 'undefined' ? `an ${type}` : `a ${type}`;
}

function optionalObject(value: unknown, where: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw badRequest('InvalidRequestFormat', `${where} must be an object.`, where);
  return value;
}

/** A string field; absent, null and '' all mean "not given". */
function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') {
    throw badRequest('InvalidRequestFormat', `${where} must be a string, not ${describeType(value)}.`, where);
  }
  if (value.length > MAX_STRING_LENGTH) {
    throw badRequest('InvalidRequestFormat', `${where} is longer than ${MAX_STRING_LENGTH} characters.`, where);
  }
  return value;
}

function optionalBoolean(value: unknown, where: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    throw badRequest('InvalidRequestFormat', `${where} must be true or false, not ${describeType(value)}.`, where);
  }
  return value;
}
