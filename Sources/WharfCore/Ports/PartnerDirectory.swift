/// The partners as the listener and the worker read them: which partners a presented
/// certificate may map to, and a generation that changes whenever partners do.
///
/// Every method is a blocking read of what is committed now (call it from a thread that
/// may block); a change committed by another process is seen by the next call.
public protocol PartnerDirectory: Sendable {
    /// The partners owning an identity with this fingerprint or subject, whatever the
    /// identity's window, and the generation they were read at; `InboundAuthorization`
    /// decides among them.
    func owners(ofFingerprint fingerprint: CertificateFingerprint, subject: SubjectName?, serial: String?) throws(WharfError) -> InboundOwners

    /// Every certificate revoked (a short list: the listener holds it to refuse revoked
    /// certificates at the handshake). Revoking raises the partner generation.
    func revocations() throws(WharfError) -> [Revocation]

    /// A number that grows whenever a partner or one of its identities is added, changed
    /// or removed: a decision made from the partners at one generation still holds while
    /// the generation is the same.
    func partnerGeneration() throws(WharfError) -> Int64

    /// The partner named `name`, if there is one.
    func partner(named name: PartnerName) throws(WharfError) -> Partner?

    /// The CAs active partners trust for their own client certificates, by partner name.
    func partnerTrustAnchors() throws(WharfError) -> [(partner: PartnerName, pem: String)]

    /// The fingerprint identities of active partners, whatever their window: the
    /// handshake accepts exactly these certificates even when no trusted CA issued them.
    func pinnedFingerprints() throws(WharfError) -> Set<CertificateFingerprint>

    /// The CRL files of active partners' own CAs (`--crl`), by partner name.
    func partnerRevocationLists() throws(WharfError) -> [(partner: PartnerName, path: String)]
}

/// The partners a client certificate may map to, as of one partner generation.
public struct InboundOwners: Sendable {
    public let partners: [Partner]
    /// Revocations naming the certificate's fingerprint or serial.
    public let revocations: [Revocation]
    public let generation: Int64

    public init(partners: [Partner], revocations: [Revocation] = [], generation: Int64) {
        self.partners = partners
        self.revocations = revocations
        self.generation = generation
    }
}
