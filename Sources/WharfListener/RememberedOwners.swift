import NIOConcurrencyHelpers
import WharfCore


/// The partners each recently seen client certificate may map to, with the partner
/// generation they were read at; shared by all connections of a listener.
///
/// An upload is decided from what is remembered here, without a trip to the registry, and
/// the decision is confirmed in the same trip that commits the upload: if the partner
/// generation moved since, the upload is decided again from the registry as it is then
/// (`InboxConnection.redecided`). Other requests, and refusals, read the registry.
final class RememberedOwners: Sendable {
    /// More certificates than this in use at once and the memory starts over (each entry
    /// holds a few partners' rows).
    static let capacity = 1024

    private let entries = NIOLockedValueBox<[CertificateFingerprint: InboundOwners]>([:])

    func owners(of fingerprint: CertificateFingerprint) -> InboundOwners? {
        entries.withLockedValue { $0[fingerprint] }
    }

    func remember(_ owners: InboundOwners, for fingerprint: CertificateFingerprint) {
        entries.withLockedValue { entries in
            if let known = entries[fingerprint], known.generation > owners.generation { return }
            if entries.count >= Self.capacity, entries[fingerprint] == nil {
                entries.removeAll(keepingCapacity: true)
            }
            entries[fingerprint] = owners
        }
    }
}
