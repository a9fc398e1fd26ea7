"""Nomad's ACL policy language and authorizer, pure (no I/O, no trio).

``parse_policy`` turns HCL1/JSON rules into a validated ``Policy`` (errors carry Nomad's exact
text in ``PolicyError.message``); ``ACL.from_policies`` compiles a token's policies into the object
whose ``allow_*`` methods answer permission questions.
"""

from allocsvc.acl.authorizer import ACL as ACL, ALL_NAMESPACES as ALL_NAMESPACES
from allocsvc.acl.policy import (
    CAP_ALLOC_EXEC as CAP_ALLOC_EXEC,
    CAP_ALLOC_LIFECYCLE as CAP_ALLOC_LIFECYCLE,
    CAP_ALLOC_NODE_EXEC as CAP_ALLOC_NODE_EXEC,
    CAP_DENY as CAP_DENY,
    CAP_LIST_JOBS as CAP_LIST_JOBS,
    CAP_READ_FS as CAP_READ_FS,
    CAP_READ_JOB as CAP_READ_JOB,
    CAP_READ_LOGS as CAP_READ_LOGS,
    HOST_VOLUME_CAPABILITIES as HOST_VOLUME_CAPABILITIES,
    NAMESPACE_CAPABILITIES as NAMESPACE_CAPABILITIES,
    NAMESPACE_POLICY_EXPANSIONS as NAMESPACE_POLICY_EXPANSIONS,
    NODE_POOL_CAPABILITIES as NODE_POOL_CAPABILITIES,
    BlockRule as BlockRule,
    CapabilityBlockRule as CapabilityBlockRule,
    LabelledRule as LabelledRule,
    NamespaceRule as NamespaceRule,
    Policy as Policy,
    PolicyError as PolicyError,
    VariablesPathRule as VariablesPathRule,
    VariablesRule as VariablesRule,
    parse_policy as parse_policy,
    policy_to_json as policy_to_json,
)
