"""The audit log: who changed what, when and from where, recorded by receivers of the domain
signals in the transaction of the change itself (docs/audit.md)."""
