import NIOConcurrencyHelpers
import NIOCore

/// Which request holds each resumable upload: one at a time, as the draft requires.
///
/// A request for an upload that another connection's request still holds cuts that one
/// off (its connection is closed, as the draft recommends: its client gave up on it) and
/// waits until it has made its bytes durable and recorded its offset, so that no answer
/// reports an offset that is about to change.
final class ActiveUploads: Sendable {
    struct Lease: Sendable {
        let id: String
        let token: UInt64
    }

    private struct Holder {
        let token: UInt64
        /// The connection of the request holding it; none for the sweep.
        let channel: (any Channel)?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private struct State {
        var next: UInt64 = 0
        var holders: [String: Holder] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Takes upload `id` for the request being read on `channel`.
    func acquire(_ id: String, on channel: any Channel) async -> Lease {
        while true {
            enum Attempt { case taken(UInt64), busy(UInt64, (any Channel)?) }
            let attempt = state.withLockedValue { state -> Attempt in
                if let holder = state.holders[id] { return .busy(holder.token, holder.channel) }
                state.next += 1
                state.holders[id] = Holder(token: state.next, channel: channel)
                return .taken(state.next)
            }
            switch attempt {
            case .taken(let token):
                return Lease(id: id, token: token)
            case .busy(let token, let holderChannel):
                holderChannel?.close(promise: nil)
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    let waiting = state.withLockedValue { state -> Bool in
                        guard state.holders[id]?.token == token else { return false }
                        state.holders[id]?.waiters.append(waiter)
                        return true
                    }
                    if !waiting { waiter.resume() }
                }
            }
        }
    }

    /// Takes upload `id` if no request holds it.
    func tryAcquire(_ id: String) -> Lease? {
        state.withLockedValue { state -> Lease? in
            guard state.holders[id] == nil else { return nil }
            state.next += 1
            state.holders[id] = Holder(token: state.next, channel: nil)
            return Lease(id: id, token: state.next)
        }
    }

    func release(_ lease: Lease) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard let holder = state.holders[lease.id], holder.token == lease.token else { return [] }
            state.holders[lease.id] = nil
            return holder.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
