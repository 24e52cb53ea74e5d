import Prometheus
import WharfCore

/// Wharf's metrics in one Prometheus registry: the counters and histograms the listener
/// and the delivery worker feed as things happen (`GatewayInstruments`), and the gauges
/// read from the store and the home at each scrape (`update(with:)`).
///
/// Every family is registered with its help text, which `promtool check metrics` requires.
/// The names are the contract with operators' dashboards: change one and their alerts
/// go quiet.
public final class GatewayMetrics: GatewayInstruments {
    public let registry = PrometheusCollectorRegistry()
    private let uploadDuration: DurationHistogram
    private let deliveryDuration: DurationHistogram
    private let gauges: ScrapedGauges

    public init(version: String) {
        uploadDuration = registry.makeDurationHistogram(descriptor: MetricFamily.uploadDuration.descriptor, buckets: Self.durationBuckets)
        deliveryDuration = registry.makeDurationHistogram(descriptor: MetricFamily.deliveryDuration.descriptor, buckets: Self.durationBuckets)
        registry.makeGauge(descriptor: MetricFamily.buildInfo.descriptor, labels: [("version", version)]).set(1.0)
        gauges = ScrapedGauges(registry: registry)
    }

    /// From a few milliseconds (a small file on loopback) to ten minutes (a large file on a slow link).
    static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(600),
    ]

    public func uploadFinished(partner: String?, outcome: String, bytes: Int64, duration: Duration) {
        let partner = partner ?? ""
        registry.makeCounter(descriptor: MetricFamily.uploads.descriptor, labels: [("partner", partner), ("outcome", outcome)]).increment()
        guard outcome == "accepted" || outcome == "replayed" else { return }
        if outcome == "accepted" {
            registry.makeCounter(descriptor: MetricFamily.uploadBytes.descriptor, labels: [("partner", partner)]).increment(by: bytes)
        }
        uploadDuration.record(duration)
    }

    public func handshakeFailed(reason: HandshakeFailure) {
        registry.makeCounter(descriptor: MetricFamily.handshakeFailures.descriptor, labels: [("reason", reason.rawValue)]).increment()
    }

    public func connectionRefused(reason: String) {
        registry.makeCounter(descriptor: MetricFamily.connectionsRefused.descriptor, labels: [("reason", reason)]).increment()
    }

    public func deliveryAttempted(partner: String, outcome: String, duration: Duration) {
        registry.makeCounter(descriptor: MetricFamily.deliveryAttempts.descriptor, labels: [("partner", partner), ("outcome", outcome)])
            .increment()
        deliveryDuration.record(duration)
    }

    /// Sets the gauges read at scrape time to `readings`, dropping the series of partners and
    /// certificates that are gone, and returns the exposition text.
    public func hookDispatched(event: String, outcome: String) {
        registry.makeCounter(descriptor: MetricFamily.hookDispatches.descriptor, labels: [("event", event), ("outcome", outcome)]).increment()
    }

    public func scrape(_ readings: GaugeReadings) -> [UInt8] {
        gauges.update(with: readings)
        return registry.emitToBuffer()
    }
}

/// One metric family: its name (base and unit) and help text.
struct MetricFamily: Sendable {
    let base: String
    let unit: String
    let help: String

    var name: String { "\(base)_\(unit)" }
    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: base, unitName: unit, helpText: help) }

    static let uploads = MetricFamily(
        base: "wharf_inbound_uploads", unit: "total",
        help: "Uploads answered, by partner (empty when the certificate maps to none) and outcome (accepted, replayed, abandoned or the refusal's code)."
    )
    static let uploadBytes = MetricFamily(base: "wharf_inbound_bytes", unit: "total", help: "Bytes of accepted uploads, by partner.")
    static let uploadDuration = MetricFamily(
        base: "wharf_inbound_upload_duration", unit: "seconds",
        help: "Time from an upload's request head to its receipt, for accepted and replayed uploads."
    )
    static let handshakeFailures = MetricFamily(
        base: "wharf_tls_handshake_failures", unit: "total", help: "Connections that ended before their first request, by reason."
    )
    static let connectionsRefused = MetricFamily(
        base: "wharf_connections_refused", unit: "total",
        help: "Connections closed as they were accepted, over a cap (reason: per_address, overall)."
    )
    static let deliveryAttempts = MetricFamily(
        base: "wharf_delivery_attempts", unit: "total",
        help: "Delivery attempts, by partner and the state they left the transfer in (delivered, retrying, dead)."
    )
    static let deliveryDuration = MetricFamily(
        base: "wharf_delivery_duration", unit: "seconds", help: "Time of one delivery attempt, whatever its outcome."
    )
    static let hookDispatches = MetricFamily(
        base: "wharf_hook_dispatches", unit: "total",
        help: "Hook events dispatched, by event (received, delivered, dead) and outcome (done, retrying, failed)."
    )
    static let hookEvents = MetricFamily(
        base: "wharf_hook", unit: "events",
        help: "Hook events by state: pending (waiting or being retried) and failed (given up)."
    )
    static let buildInfo = MetricFamily(base: "wharf_build", unit: "info", help: "Always 1; the version is the label.")
    static let transfers = MetricFamily(base: "wharf", unit: "transfers", help: "Transfers by partner and state.")
    static let oldestQueuedAge = MetricFamily(
        base: "wharf_transfer_oldest_queued_age", unit: "seconds",
        help: "Age of each partner's longest-waiting transfer (queued or retrying); 0 when none waits."
    )
    static let certificateExpiry = MetricFamily(
        base: "wharf_certificate_expiry_timestamp", unit: "seconds",
        help: "When each certificate Wharf uses or accepts expires, in seconds since 1970 (kind: ca, server, client, partner)."
    )
    static let spoolFree = MetricFamily(
        base: "wharf_spool_free", unit: "bytes", help: "Free bytes on the spool's file system, for unprivileged users."
    )
}
