/* Reading and writing this product's diagram extensions (the spiffworkflow namespace)
 * through bpmn-js commands, so every edit is undoable and lands in the exported XML. */
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

function extensionValues(bo) {
  return (bo.get('extensionElements') && bo.get('extensionElements').get('values')) || [];
}

function findExtension(bo, type) {
  return extensionValues(bo).find((value) => is(value, type));
}

/** The value of `<spiffworkflow:property name=…>` on an element, or ''. */
export function getProperty(element, name) {
  const properties = findExtension(getBusinessObject(element), 'spiffworkflow:Properties');
  const found = properties && (properties.get('properties') || []).find((p) => p.get('name') === name);
  return (found && found.get('value')) || '';
}

/** Every property of an element's own `<spiffworkflow:properties>` as [name, value] pairs. */
export function listProperties(bo) {
  const properties = findExtension(bo, 'spiffworkflow:Properties');
  return ((properties && properties.get('properties')) || []).map((p) => [p.get('name'), p.get('value') || '']);
}

function ensureExtensionElements(element, bo, bpmnFactory, modeling) {
  let extensionElements = bo.get('extensionElements');
  if (!extensionElements) {
    extensionElements = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    extensionElements.$parent = bo;
    modeling.updateModdleProperties(element, bo, { extensionElements });
  }
  return extensionElements;
}

function ensureExtension(element, bo, type, bpmnFactory, modeling) {
  const existing = findExtension(bo, type);
  if (existing) {
    return existing;
  }
  const extensionElements = ensureExtensionElements(element, bo, bpmnFactory, modeling);
  const created = bpmnFactory.create(type, {});
  created.$parent = extensionElements;
  modeling.updateModdleProperties(element, extensionElements, {
    values: [ ...extensionElements.get('values'), created ]
  });
  return created;
}

/** Set (or, with an empty value, remove) `<spiffworkflow:property name=…>`. */
export function setProperty(element, name, value, { bpmnFactory, modeling }) {
  const bo = getBusinessObject(element);
  const text = (value || '').trim();
  const existing = findExtension(bo, 'spiffworkflow:Properties');
  if (!text && !existing) {
    return;
  }
  const properties = existing || ensureExtension(element, bo, 'spiffworkflow:Properties', bpmnFactory, modeling);
  const list = properties.get('properties') || [];
  const found = list.find((p) => p.get('name') === name);
  if (!text) {
    if (found) {
      modeling.updateModdleProperties(element, properties, { properties: list.filter((p) => p !== found) });
    }
    return;
  }
  if (found) {
    modeling.updateModdleProperties(element, found, { value: text });
    return;
  }
  const property = bpmnFactory.create('spiffworkflow:Property', { name, value: text });
  property.$parent = properties;
  modeling.updateModdleProperties(element, properties, { properties: [ ...list, property ] });
}

/** The operation (`csi/…`) a service task calls, or ''. */
export function getOperation(element) {
  const operator = findExtension(getBusinessObject(element), 'spiffworkflow:ServiceTaskOperator');
  return (operator && operator.get('id')) || '';
}

/** Name the operation a service task calls; the parameters stay as they are. */
export function setOperation(element, operation, { bpmnFactory, modeling }) {
  const bo = getBusinessObject(element);
  const operator = ensureExtension(element, bo, 'spiffworkflow:ServiceTaskOperator', bpmnFactory, modeling);
  modeling.updateModdleProperties(element, operator, { id: operation || undefined });
}

/** The record statuses a process declares (`record_status:<key>` = "zh | en"). */
export function recordStatuses(element) {
  let bo = getBusinessObject(element);
  while (bo && !is(bo, 'bpmn:Process')) {
    bo = bo.$parent;
  }
  if (!bo) {
    return [];
  }
  return listProperties(bo)
    .filter(([ name ]) => name && name.startsWith('record_status:'))
    .map(([ name, label ]) => ({ key: name.slice('record_status:'.length), label }));
}

/** The condition of a sequence flow as text, or ''. */
export function getCondition(element) {
  const condition = getBusinessObject(element).get('conditionExpression');
  return (condition && condition.get('body')) || '';
}

export function setCondition(element, text, { bpmnFactory, modeling }) {
  const body = (text || '').trim();
  const condition = body
    ? bpmnFactory.create('bpmn:FormalExpression', { body })
    : undefined;
  modeling.updateProperties(element, { conditionExpression: condition });
}
