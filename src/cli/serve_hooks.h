// The adapters and function vectors `strata serve` loads at start-up (--lora, --fv), and the
// per-request hooks built from them (server::HookProvider). Every loaded item gets an id in
// flag order and is applied by default at its flag scale (llama.cpp's server does the same for
// --lora); a request's "lora" / "fv" field replaces that set for the request.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "adapters/lora.h"
#include "fv/fvec.h"
#include "model/model.h"
#include "server/server.h"

namespace strata::cli {

class ServeHooks final : public server::HookProvider {
public:
    // Loads and checks every FILE[:SCALE] against the model; errors name the flag and file.
    static Result<std::unique_ptr<ServeHooks>> load(const model::Model& m, const std::vector<std::string>& lora,
                                                    const std::vector<std::string>& fv);
    Result<engine::RequestHooks> make(const std::optional<std::vector<server::HookRef>>& lora,
                                      const std::optional<std::vector<server::HookRef>>& fv) const override;
    nlohmann::json list_lora() const override;
    nlohmann::json list_fv() const override;

private:
    explicit ServeHooks(const model::Model& m) : model_(m) {}
    template <typename T>
    struct Item {
        std::string path;
        float scale = 1.f;
        std::shared_ptr<const T> value;
    };
    const model::Model& model_;
    std::vector<Item<adapters::LoraAdapter>> lora_;
    std::vector<Item<fv::FunctionVector>> fv_;
};

}  // namespace strata::cli
