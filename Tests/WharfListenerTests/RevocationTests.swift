import Foundation
import Testing
import WharfCore
import WharfPKI
import WharfStore
import WharfTestSupport

/// Revocation without a restart: a revoked certificate fails the next handshake, a TLS
/// session resumed from before included; an open keep-alive connection is refused on its
/// next request; the audit trail says "revoked".
@Suite(.serialized) struct RevocationTests {
    @Test func aRevokedCertificateFailsTheNextHandshakeAndAResumedSessionGets403() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("a.txt", size: 10)
        #expect(try await gateway.put(file.path, as: "before.txt").status == 201)
        let session = gateway.fixture.directory.file("session.pem")
        let tls = gateway.sClient(["-ign_eof"])
        let request = "PUT /inbox/a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\na"
        let first = try await Command.runAsync("openssl", tls + ["-sess_out", session], input: Data(request.utf8))
        #expect(first.stdout.contains("201 Created"), "\(first.stdout)")
        let open = try BackgroundProcess("openssl", gateway.sClient())
        open.send("PUT /inbox/one.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\none")
        try await open.waitForOutput { $0.contains("201 Created") }

        let revoked = try await gateway.fixture.succeed("partner", "revoke", "acme", "--reason", "key leaked").stdout
        #expect(revoked.contains("Revoked  ") && revoked.contains("from the next handshake"), "\(revoked)")

        let refused = try await gateway.put(file.path, as: "after.txt")
        #expect(refused.status == 0 && refused.curlStatus != 0, "a new handshake was accepted: \(refused.body)")
        let resumed = try await Command.runAsync("openssl", tls + ["-sess_in", session], input: Data(request.utf8))
        // Resumed, the session's certificate is checked again after the handshake: refused.
        #expect(resumed.stdout.contains("Reused, TLSv1.3"), "the session was not resumed: \(resumed.stdout)")
        #expect(!resumed.stdout.contains("HTTP/1.1"), "a resumed session of a revoked certificate was answered: \(resumed.stdout)")
        open.send("PUT /inbox/two.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\ntwo")
        let output = try await open.waitForOutput { $0.contains("403 Forbidden") }
        #expect(output.contains("the certificate was revoked at") && output.contains("(key leaked)"), "\(output)")
        open.closeInput()
        try await gateway.stop()

        #expect(try gateway.registry.receipts(partner: "acme", limit: 10).count == 3)
        let events = try gateway.registry.auditEvents(AuditFilter(kind: .refusal), limit: 50)
        // The new handshake and the resumed one, counted in one event of their minute (or two).
        let refusals = events.filter { $0.detail?.hasPrefix("TLS handshake refused: the certificate was revoked at") == true }
        #expect(refusals.allSatisfy { $0.detail?.contains("partner 'acme'") == true }, "\(events.map(\.detail))")
        #expect(refusals.map { $0.detail?.contains("(2 times") == true ? 2 : 1 }.reduce(0, +) == 2, "\(events.map(\.detail))")
        let admin = try #require(try gateway.registry.auditEvents(AuditFilter(kind: .admin), limit: 1).first)
        #expect(admin.command == "partner revoke" && admin.detail?.hasSuffix(": key leaked") == true)
    }

    @Test func aCertificateRevokedBySerialIsRefusedAndAnotherOfThePartnerStillWorks() async throws {
        let gateway = try await TestGateway.start()
        // A second certificate for acme, from Wharf's CA; then the first is revoked by serial.
        let authority = try PKIDirectory(path: "\(gateway.home)/pki").loadAuthority()
        let second = try authority.issueClientCertificate(commonName: "acme-2", organization: "Acme", keyType: .p256, days: 30)
        let directory = gateway.fixture.directory
        try directory.write("second.crt", second.certificate.pemText)
        try directory.write("second.key", second.privateKeyPEM)
        try await gateway.fixture.succeed("partner", "update", "acme", "--fingerprint", second.certificate.fingerprint.hex)
        let serial = try await Command.runAsync("openssl", ["x509", "-noout", "-serial", "-in", "\(gateway.home)/partners/acme/acme.crt"])
        let hex = String(serial.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("serial=".count))
        let said = try await gateway.fixture.succeed("ca", "revoke", "--serial", hex).stdout
        #expect(said.contains("Revoked serial"), "\(said)")

        let file = try gateway.randomFile("a.txt", size: 10)
        #expect(try await gateway.put(file.path, as: "first.txt").status == 0)
        let other = try await gateway.curl(["--cert", directory.file("second.crt"), "--key", directory.file("second.key"),
                                             "--cacert", "\(gateway.home)/pki/identity-ca.crt", "--upload-file", file.path, gateway.url("/inbox/second.txt")], as: nil)
        #expect(other.status == 201, "\(other.body)")
        // Again: already revoked, nothing added.
        #expect(try await gateway.fixture.succeed("ca", "revoke", "--serial", hex).stdout.contains("already revoked"))
        try await gateway.stop()
        #expect(try gateway.registry.revocations().count == 1)
    }
}
