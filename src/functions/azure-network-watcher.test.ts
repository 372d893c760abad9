/**
 * How Azure's answers map to the port's CaptureState. The whole adapter runs against tripcap's ARM API in
 * test/e2e/azure-network-watcher.test.ts; these are the answers only real Azure gives (no `files` extension).
 */
import { describe, expect, it } from 'vitest';
import { AzureCallError, captureState, locationKey } from './azure-network-watcher.js';

const TARGET = '/subscriptions/s/resourceGroups/web-rg/providers/Microsoft.Compute/virtualMachines/web-1';
const BLOB =
  'https://capturesweu.blob.core.windows.net/network-watcher-logs/subscriptions/s/…/packetcapture_10_00_00_000.cap';
const capture = { name: 'pc1', target: TARGET, storageLocation: { storagePath: BLOB } };

describe('captureState (Azure answers)', () => {
  it('Running: no file yet, though Azure already names the blob', () => {
    const started = new Date('2026-11-29T10:00:00Z');
    expect(
      captureState(capture, { packetCaptureStatus: 'Running', captureStartTime: started, packetCaptureError: [] }),
    ).toEqual({
      name: 'pc1',
      target: TARGET,
      status: 'Running',
      stopReason: null,
      errors: [],
      startTime: '2026-11-29T10:00:00.000Z',
      files: [],
    });
  });

  it('Stopped: the storagePath blob is the file, size and SHA-256 unknown', () => {
    expect(captureState(capture, { packetCaptureStatus: 'Stopped', stopReason: 'TimeExceeded' })).toMatchObject({
      status: 'Stopped',
      stopReason: 'TimeExceeded',
      files: [{ url: BLOB, size: null, sha256: null }],
    });
  });

  it('Error: its error codes; a capture to a VM file only (no storagePath) has no file URL to give', () => {
    expect(
      captureState(
        { name: 'pc2', target: TARGET, storageLocation: { filePath: '/var/captures/pc2.cap' } },
        { packetCaptureStatus: 'Error', packetCaptureError: ['AgentStopped', 'CaptureFailed'], stopReason: '' },
      ),
    ).toMatchObject({ status: 'Error', stopReason: null, errors: ['AgentStopped', 'CaptureFailed'], files: [] });
  });

  it('no status at all is Unknown', () => {
    expect(captureState(capture, {})).toMatchObject({ status: 'Unknown', startTime: null, files: [] });
  });

  it("tripcap's per-file answer wins over storagePath when present", () => {
    const status = {
      packetCaptureStatus: 'Stopped',
      files: [{ storagePath: 'https://tripcap:8443/blobs/x.cap', size: 1234, sha256: 'ab'.repeat(32) }],
    };
    expect(captureState(capture, status).files).toEqual([
      { url: 'https://tripcap:8443/blobs/x.cap', size: 1234, sha256: 'ab'.repeat(32) },
    ]);
  });
});

describe('locationKey', () => {
  it('compares locations as Azure writes them either way', () => {
    expect(locationKey('West Europe')).toBe(locationKey('westeurope'));
    expect(locationKey(' East US 2 ')).toBe('eastus2');
  });
});

describe('AzureCallError', () => {
  it('says which call failed, with status, code and message', () => {
    const err = new AzureCallError("get of packet capture 'pc1' on NetworkWatcher_westeurope", 404, 'NotFound', 'gone');
    expect(err.message).toBe("get of packet capture 'pc1' on NetworkWatcher_westeurope failed: 404 NotFound: gone");
    expect(new AzureCallError('list', undefined, undefined, 'socket hang up').message).toBe(
      'list failed: socket hang up',
    );
  });
});
