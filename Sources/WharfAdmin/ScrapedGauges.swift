import Foundation
import Prometheus
import Synchronization
import WharfCore

/// What the gauges read at scrape time say: counts from the store, certificates from the
/// home, space from the spool's file system. The gateway's wiring gathers them.
public struct GaugeReadings: Sendable {
    public struct TransferCount: Sendable, Equatable {
        public var partner: String
        public var state: Transfer.State
        public var count: Int

        public init(partner: String, state: Transfer.State, count: Int) {
            self.partner = partner
            self.state = state
            self.count = count
        }
    }

    /// Partners' transfers by state; states a partner has none in may be left out (they
    /// are reported as 0). Only partners in `partners` are reported.
    public var transfers: [TransferCount]
    /// Every registered partner, so that each has a series for each state, zeros included.
    public var partners: [String]
    /// When each partner's longest-waiting transfer (queued or retrying) was queued.
    public var oldestQueued: [String: Date]
    public var certificates: [CertificateExpiry]
    public var spoolFreeBytes: Int64
    /// Hook events waiting (`pending`) and given up (`failed`); absent states count 0.
    public var hookEvents: [HookEvent.State: Int]
    public var now: Date

    public init(
        transfers: [TransferCount], partners: [String], oldestQueued: [String: Date],
        certificates: [CertificateExpiry], spoolFreeBytes: Int64, hookEvents: [HookEvent.State: Int] = [:], now: Date
    ) {
        self.hookEvents = hookEvents
        self.transfers = transfers
        self.partners = partners
        self.oldestQueued = oldestQueued
        self.certificates = certificates
        self.spoolFreeBytes = spoolFreeBytes
        self.now = now
    }
}

/// The gauges set from `GaugeReadings`. A series whose partner or certificate is gone is
/// unregistered, so a removed partner stops being reported instead of freezing at its last
/// value. Scrapes are serialised: two at once would race on that bookkeeping.
final class ScrapedGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let spoolFree: Gauge
    /// The series set by the previous scrape, by name and labels.
    private let previous = Mutex<[SeriesKey: Gauge]>([:])

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [String]
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        spoolFree = registry.makeGauge(descriptor: MetricFamily.spoolFree.descriptor)
    }

    func update(with readings: GaugeReadings) {
        previous.withLock { previous in
            var current: [SeriesKey: Gauge] = [:]
            func set(_ family: MetricFamily, _ labels: [(String, String)], _ value: Double) {
                let key = SeriesKey(name: family.name, labels: labels.flatMap { [$0.0, $0.1] })
                let gauge = previous[key] ?? registry.makeGauge(descriptor: family.descriptor, labels: labels)
                gauge.set(value)
                current[key] = gauge
            }

            var counts: [String: [Transfer.State: Int]] = [:]
            for partner in readings.partners { counts[partner] = [:] }
            // Only registered partners: the rows a removed partner left do not keep its series alive.
            for row in readings.transfers where counts[row.partner] != nil { counts[row.partner]?[row.state, default: 0] += row.count }
            for (partner, byState) in counts {
                for state in Transfer.State.allCases {
                    set(.transfers, [("partner", partner), ("state", state.rawValue)], Double(byState[state] ?? 0))
                }
                let age = readings.oldestQueued[partner].map { max(0, readings.now.timeIntervalSince($0)) } ?? 0
                set(.oldestQueuedAge, [("partner", partner)], age)
            }
            for certificate in readings.certificates {
                set(
                    .certificateExpiry,
                    [("kind", certificate.kind.rawValue), ("partner", certificate.partner ?? ""), ("fingerprint", certificate.fingerprint ?? "")],
                    certificate.notAfter.timeIntervalSince1970.rounded(.down)
                )
            }
            for state in [HookEvent.State.pending, .failed] {
                set(.hookEvents, [("state", state.rawValue)], Double(readings.hookEvents[state] ?? 0))
            }
            for (key, gauge) in previous where current[key] == nil {
                registry.unregisterGauge(gauge)
            }
            previous = current
            spoolFree.set(Double(readings.spoolFreeBytes))
        }
    }
}
