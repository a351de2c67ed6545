// VolumeStore and NodeInventory in memory: for unit tests and `meshstor controller --state memory`.
import type { NodeInfo } from '../placement/model.ts';
import { StateError } from './errors.ts';
import { type ExtentLedger, MemoryLedger } from './ledger.ts';
import type { NodeInventory, Peer, PeerDirectory, VolumeRecord, VolumeStore } from './store.ts';

export class MemoryVolumeStore implements VolumeStore {
  private readonly records = new Map<string, { rec: VolumeRecord; version: number }>();
  private readonly versions = new WeakMap<VolumeRecord, number>();
  readonly ledger: ExtentLedger = new MemoryLedger();

  async get(id: string): Promise<VolumeRecord | undefined> {
    const r = this.records.get(id);
    return r && this.copy(r.rec, r.version);
  }

  async list(): Promise<VolumeRecord[]> {
    return [...this.records.values()].map((r) => this.copy(r.rec, r.version));
  }

  async create(record: VolumeRecord): Promise<void> {
    if (this.records.has(record.id)) throw new StateError('exists', `volume ${record.id} exists already`);
    this.records.set(record.id, { rec: structuredClone(record), version: 1 });
  }

  async replace(record: VolumeRecord): Promise<void> {
    const cur = this.records.get(record.id);
    if (!cur) throw new StateError('not-found', `volume ${record.id} does not exist`);
    if (this.versions.get(record) !== cur.version) {
      throw new StateError('changed', `volume ${record.id} changed since it was read; retry`);
    }
    this.records.set(record.id, { rec: structuredClone(record), version: cur.version + 1 });
  }

  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }

  private copy(rec: VolumeRecord, version: number): VolumeRecord {
    const c = structuredClone(rec);
    this.versions.set(c, version);
    return c;
  }
}

export class StaticInventory implements NodeInventory {
  private readonly list: NodeInfo[];
  constructor(list: NodeInfo[]) {
    this.list = list;
  }
  async nodes(): Promise<NodeInfo[]> {
    return structuredClone(this.list);
  }
}

/** Peers in memory (tests, trials): a node is ready until marked down. */
export class StaticPeers implements PeerDirectory {
  private readonly peers = new Map<string, Peer>();
  set(p: Peer): void {
    this.peers.set(p.node, { ...p });
  }
  setReady(node: string, ready: boolean): void {
    const p = this.peers.get(node);
    if (p) p.ready = ready;
  }
  async peer(node: string): Promise<Peer | undefined> {
    const p = this.peers.get(node);
    return p && { ...p, address: { ...p.address } };
  }
}
