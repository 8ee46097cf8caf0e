/* select.c - label, expression and namespace selectors: the virtual services a
 * gateway serves and the route tables a delegating route reaches. */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "sluice/kinds.h"
#include "translate_internal.h"

bool tr_expressions_match(const Sluice__V1__Metadata *md, Sluice__V1__LabelExpression *const *ex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = sl_kind_label(md, ex[i]->key);
        const char *want = ex[i]->n_values ? ex[i]->values[0] : "";
        bool in = false;
        for (size_t j = 0; v && j < ex[i]->n_values; j++)
            if (strcmp(v, ex[i]->values[j]) == 0)
                in = true;
        switch (ex[i]->operator_) {
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__Equals:
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__DoubleEquals:
            if (!v || strcmp(v, want) != 0)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__NotEquals:
            if (v && strcmp(v, want) == 0)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__In:
            if (!in)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__NotIn:
            if (in)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__Exists:
            if (!v)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__DoesNotExist:
            if (v)
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__GreaterThan:
            if (!v || atol(v) <= atol(want))
                return false;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__LessThan:
            if (!v || atol(v) >= atol(want))
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

bool tr_labels_match(const Sluice__V1__Metadata *md, size_t n, void *const *entries)
{
    /* entries are map entries {key, value} of the same layout for every
     * map<string,string> field protobuf-c generates. */
    typedef struct {
        ProtobufCMessage base;
        char *key;
        char *value;
    } kv;
    for (size_t i = 0; i < n; i++) {
        const kv *e = entries[i];
        const char *v = sl_kind_label(md, e->key);
        if (!v || strcmp(v, e->value) != 0)
            return false;
    }
    return true;
}

bool tr_ns_selected(const char *ns, char *const *nss, size_t n, const char *def)
{
    if (n == 0)
        return def == NULL || strcmp(ns, def) == 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nss[i], "*") == 0 || strcmp(nss[i], ns) == 0)
            return true;
    return false;
}

bool tr_vs_selected(const Sluice__V1__HttpGateway *hg, const char *gw_ns, const tr_entry *e)
{
    const Sluice__V1__VirtualService *vs = (const Sluice__V1__VirtualService *)e->msg;
    if (!hg)
        return true;
    if (hg->n_virtual_services) {
        for (size_t i = 0; i < hg->n_virtual_services; i++) {
            const Sluice__V1__ResourceRef *r = hg->virtual_services[i];
            const char *ns = r->namespace_ && r->namespace_[0] ? r->namespace_ : gw_ns;
            if (strcmp(ns, e->ns) == 0 && strcmp(r->name, e->name) == 0)
                return true;
        }
        return false;
    }
    if (!tr_ns_selected(e->ns, hg->virtual_service_namespaces, hg->n_virtual_service_namespaces, NULL))
        return false;
    if (hg->n_virtual_service_selector &&
        !tr_labels_match(vs->metadata, hg->n_virtual_service_selector, (void *const *)hg->virtual_service_selector))
        return false;
    if (hg->virtual_service_expressions &&
        !tr_expressions_match(vs->metadata, hg->virtual_service_expressions->expressions,
                           hg->virtual_service_expressions->n_expressions))
        return false;
    return true;
}

bool tr_expressions_valid(tr_ctx *tx, Sluice__V1__LabelExpression *const *ex, size_t n, const char *p)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        size_t nv = ex[i]->n_values;
        const char *why = NULL;
        char *end;
        switch (ex[i]->operator_) {
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__In:
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__NotIn:
            why = nv == 0 ? "needs at least one value" : NULL;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__Exists:
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__DoesNotExist:
            why = nv != 0 ? "takes no values" : NULL;
            break;
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__GreaterThan:
        case SLUICE__V1__LABEL_EXPRESSION__OPERATOR__LessThan:
            if (nv != 1)
                why = "needs exactly one value";
            else if (strtol(ex[i]->values[0], &end, 10), end == ex[i]->values[0] || *end)
                why = "needs an integer value";
            break;
        default:
            why = nv != 1 ? "needs exactly one value" : NULL;
        }
        if (!ex[i]->key || !ex[i]->key[0])
            why = "needs a key";
        if (why) {
            const ProtobufCEnumValue *op =
                protobuf_c_enum_descriptor_get_value(&sluice__v1__label_expression__operator__descriptor,
                                                     (int)ex[i]->operator_);
            tr_error(tx, "%s.expressions[%zu]: the selector expression is invalid: operator %s %s", p, i,
                     op ? op->name : "?", why);
            ok = false;
        }
    }
    return ok;
}
