// NetworkPolicy: the compiler (API objects → PolicyModel) and its nftables enforcer.
export * from './types.js';
export { compilePolicies, NAMESPACE_NAME_LABEL, type CompileInput } from './compile.js';
export { compileSelector, selectorProblem } from './selector.js';
export {
  POLICY_FAMILY, POLICY_TABLE, comboChainName, createNftPolicyEnforcer, nftRunner, policyChainName, renderDiff, renderFull, renderPolicyState,
  type ApplyResult, type ComboInfo, type DropCounter, type EnforcerOptions, type NftChain, type NftPolicyState, type NftRunner, type NftSet,
  type PolicyDiff, type PolicyEnforcer, type RenderOptions,
} from './nft.js';
export { connectionAllowed, directionAllows, type Probe } from './evaluate.js';
export { objectKey, slimNamespace, slimNetworkPolicy, slimPod } from './slim.js';
