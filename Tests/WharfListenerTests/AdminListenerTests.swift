import Foundation
import Testing
import WharfCore
import WharfDelivery
import WharfTestSupport

/// The admin listener of a running gateway: `/metrics` read by Prometheus' own checker
/// (`promtool`, from Debian's prometheus package, which scripts/test installs), `/healthz`
/// and `/readyz`.
@Suite struct AdminListenerTests {
    struct Scrape {
        let text: String

        /// The value of the series written exactly as `series` (name and labels).
        func value(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
    }

    static func scrape(_ gateway: TestGateway, path: String = "/metrics") async throws -> (status: Int, body: String) {
        let port = try #require(gateway.adminPort)
        let result = try await Command.runAsync("curl", ["-sS", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        let http = HTTPResult(result)
        return (http.status, http.body)
    }

    @Test func aScrapeCountsUploadsRefusalsAndDeliveriesAndPassesPromtool() async throws {
        let fixture = try TestGateway.homeWithAcme()
        // Nothing listens on port 9 of loopback: the one attempt allowed fails and the transfer dies.
        try await fixture.succeed("partner", "update", "acme", "--url", "https://127.0.0.1:9/inbox/")
        let files = TestGatewayFiles(fixture: fixture)
        let outbound = try files.randomFile("invoice-outbound.xml", size: 100)
        try await fixture.succeed("send", "acme", outbound.path)
        var delivery = DeliveryConfiguration()
        delivery.retryPolicy.maxAttempts = 1
        let gateway = try await TestGateway.start(fixture: fixture, admin: 0, delivery: delivery)

        let upload = try files.randomFile("orders-2026-12.csv", size: 1_234)
        #expect(try await gateway.put(upload.path, as: "orders-2026-12.csv").status == 201)
        let refused = try await gateway.curl(["--upload-file", upload.path, gateway.url("/inbox/x.csv")], as: nil)
        #expect(refused.status != 201)

        // The handshake failure is counted when the server side gives up on the connection,
        // which may be after curl returned.
        let scrape = try await Wait.within(.seconds(60), "the handshake failure and the delivery in the metrics") {
            while true {
                let scrape = Scrape(text: try await Self.scrape(gateway).body)
                if scrape.value(#"wharf_tls_handshake_failures_total{reason="no_certificate"}"#) != nil,
                   scrape.value(#"wharf_delivery_attempts_total{partner="acme",outcome="dead"}"#) != nil {
                    return scrape
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let directory = try TemporaryDirectory("wharf-metrics")
        let saved = try directory.write("metrics.txt", scrape.text)
        let checked = try await Command.runAsync("sh", ["-c", "promtool check metrics < \"$0\"", saved])
        #expect(checked.status == 0, "promtool: \(checked.stdout)\(checked.stderr)")

        #expect(scrape.value(#"wharf_inbound_uploads_total{partner="acme",outcome="accepted"}"#) == 1)
        #expect(scrape.value(#"wharf_inbound_bytes_total{partner="acme"}"#) == 1_234)
        #expect(scrape.value("wharf_inbound_upload_duration_seconds_count") == 1)
        #expect(scrape.value(#"wharf_tls_handshake_failures_total{reason="no_certificate"}"#) == 1)
        #expect(scrape.value(#"wharf_delivery_attempts_total{partner="acme",outcome="dead"}"#) == 1)
        #expect(scrape.value("wharf_delivery_duration_seconds_count") == 1)
        #expect(scrape.value(#"wharf_transfers{partner="acme",state="dead"}"#) == 1)
        #expect(scrape.value(#"wharf_transfers{partner="acme",state="queued"}"#) == 0)
        #expect(scrape.value(#"wharf_transfer_oldest_queued_age_seconds{partner="acme"}"#) == 0)
        #expect(scrape.value(#"wharf_build_info{version="\#(WharfVersion.current)"}"#) == 1)
        #expect((scrape.value("wharf_spool_free_bytes") ?? 0) > 0)
        for kind in CertificateExpiry.Kind.allCases {
            #expect(scrape.text.contains("wharf_certificate_expiry_timestamp_seconds{kind=\"\(kind.rawValue)\""), "\(kind)")
        }
        // Labels stay bounded: no file name, no address.
        for unbounded in ["orders-2026-12", "invoice-outbound", "127.0.0.1"] {
            #expect(!scrape.text.contains(unbounded), "\(unbounded) is in the metrics")
        }

        // A removed partner's gauges go; what was counted stays counted.
        try await fixture.succeed(["partner", "remove", "acme", "--force"])
        let afterRemoval = Scrape(text: try await Self.scrape(gateway).body)
        #expect(!afterRemoval.text.contains(#"wharf_transfers{partner="acme""#))
        #expect(!afterRemoval.text.contains(#"kind="partner",partner="acme""#))
        #expect(afterRemoval.value(#"wharf_inbound_uploads_total{partner="acme",outcome="accepted"}"#) == 1)
        try await gateway.stop()
    }

    @Test func healthAndReadiness() async throws {
        let ready = try await TestGateway.start(admin: 0)
        #expect(try await Self.scrape(ready, path: "/healthz").status == 200)
        let answer = try await Self.scrape(ready, path: "/readyz")
        #expect(answer.status == 200)
        #expect(answer.body.contains(#""ready":true"#))
        #expect(try await Self.scrape(ready, path: "/nothing").status == 404)
        try await ready.stop()

        // More free space required than any disk has: serving, but not ready, and it says why.
        let full = try await TestGateway.start(admin: Int64.max)
        #expect(try await Self.scrape(full, path: "/healthz").status == 200)
        let unready = try await Self.scrape(full, path: "/readyz")
        #expect(unready.status == 503)
        #expect(unready.body.contains(#""ready":false"#))
        #expect(unready.body.contains("--min-free-space"), "\(unready.body)")
        try await full.stop()
    }

    @Test func onlyGETAndHEADAreAnswered() async throws {
        let gateway = try await TestGateway.start(admin: 0)
        let port = try #require(gateway.adminPort)
        let posted = HTTPResult(try await Command.runAsync("curl", ["-sS", "-w", "\n%{http_code}", "-X", "POST", "http://127.0.0.1:\(port)/metrics"]))
        #expect(posted.status == 405)
        let head = try await Command.runAsync("curl", ["-sS", "-I", "http://127.0.0.1:\(port)/healthz"])
        #expect(head.stdout.hasPrefix("HTTP/1.1 200"))
        try await gateway.stop()
    }
}
