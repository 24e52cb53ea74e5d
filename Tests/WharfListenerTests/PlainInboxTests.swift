import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing
import WharfCore
import WharfSpool
import WharfStore
import WharfTestSupport
@testable import WharfListener

/// The inbox over the HTTP layer alone, on an in-memory channel: no socket, no TLS, the
/// client certificate given as it would come out of a session.
@Suite struct PlainInboxTests {
    let directory: TemporaryDirectory
    let store: Registry
    let spool: Spool
    let presented: PresentedCertificate

    init() throws {
        directory = try TemporaryDirectory("wharf-plain-inbox")
        store = try Registry.create(at: directory.file(Registry.fileName))
        spool = Spool(root: directory.file("spool"))
        try spool.prepare()
        let fingerprint = CertificateFingerprint(digest: Array(repeating: 0x5a, count: 32))
        try store.add(Partner(name: try PartnerName("acme"), identities: [try InboundIdentity(.fingerprint(fingerprint))]))
        presented = PresentedCertificate(fingerprint: fingerprint, subject: nil, subjectText: "CN=acme", issuer: .wharf)
    }

    /// Serves `request` on a fresh in-memory channel and returns what went back.
    func serve(_ request: String, as certificate: PresentedCertificate?) async throws -> String {
        let channel = NIOAsyncTestingChannel()
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        let context = InboxContext(
            configuration: ListenerConfiguration(), store: store, spool: spool, threadPool: threadPool,
            rememberedOwners: RememberedOwners(), logger: { var logger = Logger(label: "test"); logger.logLevel = .warning; return logger }()
        )
        let connection = try await channel.eventLoop.submit {
            try HTTPChannel.configure(channel, configuration: ListenerConfiguration(), secured: false)
        }.get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 40_000)).get()
        let served = Task { await InboxConnection(connection: connection, identity: ClientIdentity { certificate }, context: context).run() }
        try await channel.writeInbound(ByteBuffer(string: request))
        // One response: its head, then its JSON body.
        let answer = try await Wait.within(.seconds(30), "the answer") {
            var answer = ""
            while !answer.contains("\r\n\r\n") || !answer.hasSuffix("}") {
                let part = try await channel.waitForOutboundWrite(as: IOData.self)
                if case .byteBuffer(let buffer) = part { answer += String(buffer: buffer) }
            }
            return answer
        }
        // Closed by the inbox after a `Connection: close` or a refusal; closed here otherwise.
        try? await channel.close()
        await served.value
        return answer
    }

    @Test func anUploadIsStoredAndReceiptedWithoutTLS() async throws {
        let answer = try await serve(
            "PUT /inbox/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", as: presented
        )
        #expect(answer.hasPrefix("HTTP/1.1 201 Created"), "\(answer)")
        let receipt = try #require(try store.receipts(partner: "acme", limit: 10).first)
        #expect(receipt.size == 3 && receipt.filename == "a.txt")
        let stored = try String(contentsOfFile: "\(spool.inboxDirectory(for: "acme"))/\(receipt.storedName)", encoding: .utf8)
        #expect(stored == "abc")
        let audit = try #require(try store.auditEvents(limit: 1).first)
        #expect(audit.outcome == .accepted && audit.remoteAddress == "127.0.0.2:40000")
    }

    @Test func aConnectionWithoutACertificateGets403AndNothingIsStored() async throws {
        let answer = try await serve("PUT /inbox/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", as: nil)
        #expect(answer.hasPrefix("HTTP/1.1 403 Forbidden"), "\(answer)")
        #expect(answer.contains("\"error\":\"unknown_partner\""))
        #expect(try store.receipts(partner: nil, limit: 10).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.stagingDirectory).isEmpty)
    }
}
