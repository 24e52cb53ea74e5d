/// What the inbound listener needs from the store.
public typealias InboxStore = PartnerDirectory & ReceiptStore & AuditTrail & BanList & PullOutbox & PartialUploadStore

/// What the delivery worker and the intake (drop folder, schedules) need from the store.
public typealias DeliveryStore = PartnerDirectory & TransferQueue & ScheduleStore & PullOutbox & HookQueue

/// Everything a gateway needs from its store: the SQLite registry of one node implements
/// it, and so must any other store.
public typealias GatewayStore = InboxStore & DeliveryStore

/// Everything a home's store does: the gateway's ports and the operator's commands.
public typealias HomeStore = GatewayStore & RegistryAdministration
