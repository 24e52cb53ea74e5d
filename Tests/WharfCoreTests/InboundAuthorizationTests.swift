import Foundation
import Testing
import WharfCore

@Suite struct InboundAuthorizationTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let fingerprint = CertificateFingerprint(digest: Array(repeating: 0xaa, count: 32))

    func certificate(subject: String = "CN=gw,O=Acme", issuer: PresentedCertificate.Issuer = .wharf) throws -> PresentedCertificate {
        PresentedCertificate(fingerprint: fingerprint, subject: try SubjectName(parsing: subject), subjectText: subject, issuer: issuer)
    }

    func partner(_ name: String, _ identities: [InboundIdentity], status: Partner.Status = .active) throws -> Partner {
        Partner(name: try PartnerName(name), status: status, identities: identities)
    }

    @Test func aFingerprintIdentityWinsOverASubjectIdentity() throws {
        let bySubject = try partner("by-subject", [InboundIdentity(.subject(SubjectName(parsing: "O=Acme,CN=gw")))])
        let byFingerprint = try partner("by-fingerprint", [InboundIdentity(.fingerprint(fingerprint))])
        let decision = InboundAuthorization.decide(try certificate(), owners: [bySubject, byFingerprint], at: now)
        #expect(decision == .accepted(byFingerprint))
    }

    @Test func anIdentityOutsideItsWindowDoesNotCount() throws {
        let expired = try InboundIdentity(.fingerprint(fingerprint), notBefore: nil, notAfter: now)
        let current = try InboundIdentity(.subject(SubjectName(parsing: "CN=gw,O=Acme")), notBefore: now.addingTimeInterval(-1), notAfter: nil)
        let old = try partner("old", [expired])
        let new = try partner("new", [current])
        #expect(InboundAuthorization.decide(try certificate(), owners: [old, new], at: now) == .accepted(new))
        #expect(InboundAuthorization.decide(try certificate(), owners: [old], at: now) == .refused("the certificate maps to no partner"))
    }

    @Test func aDisabledPartnerIsRefused() throws {
        let disabled = try partner("acme", [InboundIdentity(.fingerprint(fingerprint))], status: .disabled)
        #expect(InboundAuthorization.decide(try certificate(), owners: [disabled], at: now) == .refused("partner 'acme' is disabled"))
    }

    @Test func aCertificateNoCAIssuedMapsByItsFingerprintOnlyNeverByItsSubject() throws {
        let bySubject = try partner("by-subject", [InboundIdentity(.subject(SubjectName(parsing: "CN=gw,O=Acme")))])
        let byFingerprint = try partner("by-fingerprint", [InboundIdentity(.fingerprint(fingerprint))])
        let pinned = try certificate(issuer: .pinned)
        #expect(InboundAuthorization.decide(pinned, owners: [bySubject, byFingerprint], at: now) == .accepted(byFingerprint))
        #expect(InboundAuthorization.decide(pinned, owners: [bySubject], at: now) == .refused("the certificate maps to no partner"))
        // The same subject from a trusted CA maps.
        #expect(InboundAuthorization.decide(try certificate(), owners: [bySubject], at: now) == .accepted(bySubject))
    }

    @Test func aPartnersOwnCAVouchesForThatPartnerOnly() throws {
        let acme = try partner("acme", [InboundIdentity(.subject(SubjectName(parsing: "CN=gw,O=Acme")))])
        let own = try certificate(issuer: .partnerCA(PartnerName("acme")))
        let other = try certificate(issuer: .partnerCA(PartnerName("beta")))
        #expect(InboundAuthorization.decide(own, owners: [acme], at: now) == .accepted(acme))
        #expect(InboundAuthorization.decide(other, owners: [acme], at: now)
            == .refused("the certificate was issued by the CA of 'beta', not of 'acme'"))
        #expect(InboundAuthorization.decide(try certificate(issuer: .unknown), owners: [acme], at: now)
            == .refused("the certificate's issuer is no longer trusted"))
    }
}
