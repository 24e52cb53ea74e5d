import Crypto
import Foundation
import Testing
import WharfCore
import WharfDelivery
import WharfPKI
import WharfStore
import WharfTestSupport

/// A partner that cannot accept connections fetches its files instead (`--delivery pull`):
/// with curl, as its bundle README says, over the same mutual-TLS listener.
@Suite(.serialized) struct PullDeliveryTests {
    func json(_ result: HTTPResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.body.utf8)) as? [String: Any], "\(result.body)")
    }

    func sha256(ofFile path: String) throws -> String {
        Hex.encode(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test func aPullPartnerListsFetchesWithResumeAndAcknowledgesOnlyItsOwnFiles() async throws {
        var delivery = DeliveryConfiguration()
        delivery.pullExpiryInterval = 0.1
        let gateway = try await TestGateway.start(delivery: delivery)
        let fixture = gateway.fixture
        for name in ["shop", "other"] {
            try await fixture.succeed("partner", "add", name, "--delivery", "pull")
            try await fixture.succeed("partner", "issue", name)
        }
        let readme = try String(contentsOfFile: "\(gateway.home)/partners/shop/README.md", encoding: .utf8)
        #expect(readme.contains("## Fetch your files") && readme.contains("-C - -o FILENAME") && readme.contains("-X DELETE"), "\(readme)")
        #expect(try fixture.partnerJSON("shop")["outbound"].flatMap { ($0 as? [String: Any])?["delivery"] as? String } == "pull")

        let files = try ["a.xml", "b.xml", "c.xml"].map { try gateway.randomFile($0, size: 200_000) }
        // One command each, so each is queued (to the millisecond) after the one before.
        for file in files { try await fixture.succeed("send", "shop", file.path) }

        // Listed oldest first, and paged.
        let listed = try json(try await gateway.curl([gateway.url("/outbox")], as: "shop"))
        let entries = try #require(listed["files"] as? [[String: Any]])
        #expect(entries.map { $0["filename"] as? String } == ["a.xml", "b.xml", "c.xml"])
        #expect(entries.map { $0["sha256"] as? String } == files.map(\.sha256))
        #expect(entries.allSatisfy { $0["size"] as? Int == 200_000 && $0["queued_at"] is String && $0["id"] is String })
        let ids = entries.compactMap { $0["id"] as? String }
        let page = try json(try await gateway.curl([gateway.url("/outbox?limit=2")], as: "shop"))["files"] as? [[String: Any]]
        #expect(page?.compactMap { $0["id"] as? String } == Array(ids.prefix(2)))
        let next = try json(try await gateway.curl([gateway.url("/outbox?limit=2&after=\(ids[1])")], as: "shop"))["files"] as? [[String: Any]]
        #expect(next?.compactMap { $0["id"] as? String } == [ids[2]])
        #expect(try await gateway.curl([gateway.url("/outbox?limit=0")], as: "shop").status == 400)

        // Another partner sees none of them; a push partner has no outbox.
        #expect((try json(try await gateway.curl([gateway.url("/outbox")], as: "other"))["files"] as? [Any])?.isEmpty == true)
        #expect(try await gateway.curl([gateway.url("/outbox/\(ids[0])")], as: "other").status == 404)
        #expect(try await gateway.curl(["-X", "DELETE", gateway.url("/outbox/\(ids[0])")], as: "other").status == 404)
        let push = try await gateway.curl([gateway.url("/outbox")], as: "acme")
        #expect(push.status == 409 && push.body.contains("not_a_pull_partner"), "\(push.body)")

        // A whole file, with its digest and validator.
        let directory = fixture.directory
        let whole = directory.file("whole.xml")
        let headers = directory.file("headers.txt")
        let fetched = try await gateway.curl(["-D", headers, "-o", whole, gateway.url("/outbox/\(ids[0])")], as: "shop")
        #expect(fetched.status == 200)
        #expect(try sha256(ofFile: whole) == files[0].sha256)
        let head = try String(contentsOfFile: headers, encoding: .utf8).lowercased()
        let digest = ContentDigest.header(sha256: Hex.decode(files[0].sha256)).lowercased()
        #expect(head.contains("content-digest: \(digest)") && head.contains("etag: \"\(files[0].sha256)\"") && head.contains("content-length: 200000"), "\(head)")

        // A download broken after 70,000 bytes, resumed with curl's -C -.
        let partial = directory.file("partial.xml")
        #expect(try await gateway.curl(["-r", "0-69999", "-o", partial, gateway.url("/outbox/\(ids[1])")], as: "shop").status == 206)
        #expect(try FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int == 70_000)
        let resumed = try await gateway.curl(["-C", "-", "-D", headers, "-o", partial, gateway.url("/outbox/\(ids[1])")], as: "shop")
        #expect(resumed.status == 206)
        #expect(try String(contentsOfFile: headers, encoding: .utf8).lowercased().contains("content-range: bytes 70000-199999/200000"))
        #expect(try sha256(ofFile: partial) == files[1].sha256)
        #expect(try await gateway.curl(["-r", "200000-", "-o", "/dev/null", gateway.url("/outbox/\(ids[1])")], as: "shop").status == 416)

        // Acknowledged: delivered, recorded with the address, moved to sent/; twice is harmless.
        let acknowledged = try await gateway.curl(["-D", headers, "-X", "DELETE", gateway.url("/outbox/\(ids[0])")], as: "shop")
        let state = try json(acknowledged)["state"] as? String
        #expect(acknowledged.status == 200 && state == "delivered", "\(acknowledged.body)")
        #expect(try json(acknowledged)["sha256"] as? String == files[0].sha256)
        // Its receipt is signed, as an upload's: the same one again on a second acknowledgement.
        let signature = try #require(try String(contentsOfFile: headers, encoding: .utf8).split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("wharf-receipt-signature:") }?.split(separator: " ").last.map(String.init))
        let saved = try directory.write("ack.sig", signature)
        #expect(try await fixture.succeed("receipt", "verify", saved).stdout.contains("valid: signed by Wharf's current server certificate"))
        let twice = try await gateway.curl(["-D", headers, "-X", "DELETE", gateway.url("/outbox/\(ids[0])")], as: "shop")
        #expect(twice.status == 200 && twice.body == acknowledged.body)
        #expect(try String(contentsOfFile: headers, encoding: .utf8).contains(signature))
        #expect(try await gateway.curl(["-X", "POST", gateway.url("/outbox/\(ids[1])/ack")], as: "shop").status == 200)
        #expect(try await gateway.curl([gateway.url("/outbox/\(ids[0])")], as: "shop").status == 404)
        let registry = try gateway.registry
        let delivered = try #require(try registry.transfer(id: ids[0]))
        #expect(delivered.state == .delivered && delivered.attempts == 1)
        let attempts = try registry.attempts(of: ids[0])
        #expect(attempts.count == 1 && attempts.first?.remoteAddress?.hasPrefix("127.0.0.1:") == true, "\(attempts)")
        #expect(attempts.first?.bytesSent == 200_000 && attempts.first?.httpStatus == 200)
        // Kept as the receipt JSON that was answered, and beside it the signature.
        #expect(delivered.receipt == acknowledged.body && delivered.receiptSignature == signature, "\(delivered)")
        let shown = try await fixture.succeed("transfers", "show", ids[0]).stdout
        #expect(shown.contains("delivered") && shown.contains("fetched and acknowledged from 127.0.0.1:"), "\(shown)")
        #expect(shown.contains("receipt    {\"delivered_at\"") && shown.contains("signed     by this gateway's server key"), "\(shown)")
        let sent = try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/sent/shop")
        #expect(sent.filter { !$0.hasSuffix(".receipt") }.count == 2, "\(sent)")
        #expect(!FileManager.default.fileExists(atPath: gateway.spool.outgoingPath(ids[0])))
        let events = try registry.auditEvents(AuditFilter(kind: .delivery), limit: 10)
        #expect(events.filter { $0.partner == "shop" && $0.outcome == .delivered && $0.remoteAddress != nil }.count == 2, "\(events)")

        // Not fetched within its maximum age: dead, with the reason, like a push transfer.
        try await fixture.succeed("partner", "update", "shop", "--max-age", "1")
        try await Wait.until(timeout: .seconds(60), "the unfetched transfer to expire") {
            try registry.transfer(id: ids[2])?.state == .dead
        }
        #expect(try registry.transfer(id: ids[2])?.lastError?.contains("not fetched within the maximum age") == true)
        #expect(try await gateway.curl([gateway.url("/outbox/\(ids[2])")], as: "shop").status == 404)
        let list = try await fixture.succeed("transfers", "list").stdout
        #expect(list.contains(ids[0]) && list.contains("delivered") && list.contains(ids[2]) && list.contains("dead"), "\(list)")
        try await gateway.stop()
    }
}
